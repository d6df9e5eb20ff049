//! The mirror itself: routing, hit counting, each fault, the API's JSON, throttling, shutdown.

mod common;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{get, open, pattern, read_head, request, split_url};
use llama_prebuilt_test_support::archives::sha256_hex;
use llama_prebuilt_test_support::mirror::{Fault, Mirror};

const TAG: &str = "b20001";
const NAME: &str = "llama-b20001-bin-ubuntu-x64.tar.gz";

fn mirror_with(bytes: Vec<u8>) -> (Mirror, String) {
    let m = Mirror::start().unwrap();
    m.add_asset_bytes(TAG, NAME, bytes);
    let url = format!("{}/{TAG}/{NAME}", m.download_base());
    (m, url)
}

#[test]
fn urls_have_the_documented_shape() {
    let m = Mirror::start().unwrap();
    let (addr, path) = split_url(&m.download_base());
    assert!(addr.starts_with("127.0.0.1:"));
    assert_eq!(path, "/download");
    assert_eq!(split_url(&m.api_base()).1, "/api/repos/ggml-org/llama.cpp");
}

#[test]
fn serves_bytes_and_counts_gets() {
    let data = pattern(100_000);
    let (m, url) = mirror_with(data.clone());
    assert_eq!(m.hits(TAG, NAME), 0);
    for i in 1..=2 {
        let r = get(&url);
        assert_eq!(r.status, 200);
        assert_eq!(r.content_length(), data.len() as u64);
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.body, data);
        assert_eq!(m.hits(TAG, NAME), i);
    }
    assert_eq!(m.hits(TAG, "other"), 0);
    assert_eq!(m.api_hits(), 0);
}

#[test]
fn head_sends_headers_only_and_is_not_a_hit() {
    let (m, url) = mirror_with(pattern(1234));
    m.inject(TAG, NAME, [Fault::Status(500)]);
    let r = request("HEAD", &url, &[]);
    assert_eq!(r.status, 200, "HEAD does not consume faults");
    assert_eq!(r.content_length(), 1234);
    assert!(r.body.is_empty());
    assert_eq!(m.hits(TAG, NAME), 0);
    assert_eq!(get(&url).status, 500);
}

#[test]
fn unknown_assets_and_paths_are_404_and_still_counted() {
    let (m, _) = mirror_with(pattern(10));
    let missing = format!("{}/{TAG}/nope.zip", m.download_base());
    assert_eq!(get(&missing).status, 404);
    assert_eq!(get(&missing).status, 404);
    assert_eq!(m.hits(TAG, "nope.zip"), 2);
    let base = m.download_base();
    let root = base.trim_end_matches("/download");
    for path in [
        "/",
        "/download",
        "/download/b1",
        "/download/b1/a/b",
        "/elsewhere",
    ] {
        assert_eq!(get(&format!("{root}{path}")).status, 404, "{path}");
    }
}

#[test]
fn faults_are_popped_one_per_get_in_order() {
    let data = pattern(500);
    let (m, url) = mirror_with(data.clone());
    m.inject(TAG, NAME, [Fault::NotFound, Fault::Status(503)]);
    m.inject(TAG, NAME, [Fault::Status(500)]);
    assert_eq!(get(&url).status, 404);
    assert_eq!(get(&url).status, 503);
    assert_eq!(get(&url).status, 500);
    let ok = get(&url);
    assert_eq!((ok.status, ok.body), (200, data));
    assert_eq!(m.hits(TAG, NAME), 4);
}

#[test]
fn faults_apply_to_missing_assets_too() {
    let m = Mirror::start().unwrap();
    m.inject(TAG, "later.zip", [Fault::Status(503)]);
    let url = format!("{}/{TAG}/later.zip", m.download_base());
    assert_eq!(get(&url).status, 503);
    assert_eq!(get(&url).status, 404);
}

#[test]
fn reset_sends_full_length_headers_and_no_body() {
    let (m, url) = mirror_with(pattern(10_000));
    m.inject(TAG, NAME, [Fault::Reset]);
    let r = get(&url);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_length(), 10_000);
    assert!(r.body.is_empty());
}

#[test]
fn truncate_stops_after_n_bytes() {
    let data = pattern(10_000);
    let (m, url) = mirror_with(data.clone());
    m.inject(
        TAG,
        NAME,
        [
            Fault::Truncate { after: 4321 },
            Fault::Truncate { after: 1 << 40 },
        ],
    );
    let r = get(&url);
    assert_eq!(r.content_length(), 10_000);
    assert_eq!(r.body, &data[..4321]);
    // `after` beyond the end: the whole body (nothing to cut).
    assert_eq!(get(&url).body, data);
}

#[test]
fn stall_sends_n_bytes_then_goes_silent_then_closes() {
    let data = pattern(50_000);
    let (m, url) = mirror_with(data.clone());
    let stall = Duration::from_millis(600);
    m.inject(
        TAG,
        NAME,
        [Fault::Stall {
            after: 1000,
            duration: stall,
        }],
    );
    let mut s = open("GET", &url, &[]);
    let started = Instant::now();
    let (status, _) = read_head(&mut s);
    assert_eq!(status, 200);
    let mut got = vec![0u8; 1000];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, &data[..1000]);
    // Silence: a short read timeout expires with no data.
    s.set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    let mut b = [0u8; 1];
    let err = s.read(&mut b).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );
    // Then the server closes: EOF, no more data.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(started.elapsed() >= stall - Duration::from_millis(50));
}

#[test]
fn wrong_bytes_keeps_the_length_and_changes_the_content() {
    let data = pattern(3000);
    let (m, url) = mirror_with(data.clone());
    m.inject(TAG, NAME, [Fault::WrongBytes]);
    let r = get(&url);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), data.len());
    assert_ne!(sha256_hex(&r.body), sha256_hex(&data));
    assert_eq!(get(&url).body, data, "next GET is normal again");
}

#[test]
fn redirect_points_at_a_second_path_serving_the_same_asset() {
    let data = pattern(2048);
    let (m, url) = mirror_with(data.clone());
    m.inject(TAG, NAME, [Fault::Redirect]);
    let r = get(&url);
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap().to_owned();
    assert_ne!(location, url);
    assert!(location.starts_with("http://127.0.0.1:"));
    let followed = get(&location);
    assert_eq!((followed.status, followed.body), (200, data));
    assert_eq!(m.hits(TAG, NAME), 1);
    assert_eq!(m.redirect_hits(TAG, NAME), 1);
}

#[test]
fn file_assets_are_streamed_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let data = pattern(3 * 1024 * 1024 + 17);
    std::fs::write(&path, &data).unwrap();
    let m = Mirror::start().unwrap();
    m.add_asset_file(TAG, "big.bin", &path);
    m.inject(TAG, "big.bin", [Fault::Truncate { after: 100_000 }]);
    let url = format!("{}/{TAG}/big.bin", m.download_base());
    assert_eq!(get(&url).body, &data[..100_000]);
    let r = get(&url);
    assert_eq!(r.content_length(), data.len() as u64);
    assert_eq!(sha256_hex(&r.body), sha256_hex(&data));
    let api = get(&format!("{}/releases/tags/{TAG}", m.api_base())).json();
    assert_eq!(
        api["assets"][0]["digest"],
        format!("sha256:{}", sha256_hex(&data))
    );
}

#[test]
fn release_api_has_githubs_shape() {
    let data = pattern(777);
    let (m, _) = mirror_with(data.clone());
    m.add_asset_bytes(TAG, "llama-b20001-bin-win-cpu-x64.zip", b"zip".to_vec());
    m.set_digest_published(TAG, "llama-b20001-bin-win-cpu-x64.zip", false);
    let r = get(&format!("{}/releases/tags/{TAG}", m.api_base()));
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let v = r.json();
    assert_eq!(v["tag_name"], TAG);
    assert_eq!(
        v["prerelease"], true,
        "implicit releases are prereleases like real bNNNN"
    );
    assert_eq!(v["draft"], false);
    let assets = v["assets"].as_array().unwrap();
    assert_eq!(assets.len(), 2);
    let a = &assets[0];
    assert_eq!(a["name"], NAME);
    assert_eq!(a["size"], 777);
    assert_eq!(a["content_type"], "application/gzip");
    assert_eq!(a["digest"], format!("sha256:{}", sha256_hex(&data)));
    let url = a["browser_download_url"].as_str().unwrap();
    assert_eq!(url, format!("{}/{TAG}/{NAME}", m.download_base()));
    assert_eq!(get(url).body, data);
    assert_eq!(assets[1]["content_type"], "application/zip");
    assert!(assets[1]["digest"].is_null());
    m.set_digest_published(TAG, "llama-b20001-bin-win-cpu-x64.zip", true);
    let v = get(&format!("{}/releases/tags/{TAG}", m.api_base())).json();
    assert_eq!(
        v["assets"][1]["digest"],
        format!("sha256:{}", sha256_hex(b"zip"))
    );
    assert_eq!(m.api_hits(), 2);
}

#[test]
fn unknown_release_is_a_json_404() {
    let m = Mirror::start().unwrap();
    let r = get(&format!("{}/releases/tags/b1", m.api_base()));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "Not Found");
    assert_eq!(
        get(&format!("{}/releases/latest", m.api_base())).status,
        404
    );
    assert_eq!(get(&format!("{}/nonsense", m.api_base())).status, 404);
    assert_eq!(m.api_hits(), 3);
}

#[test]
fn release_list_is_newest_first_and_paginated() {
    let m = Mirror::start().unwrap();
    m.add_release("b100", true);
    m.add_asset_bytes("b101", "a.tar.gz", b"a".to_vec());
    m.add_release("v0.1.0", false);
    m.add_release("b102", true);
    let list = |q: &str| {
        let v = get(&format!("{}/releases{q}", m.api_base())).json();
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["tag_name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(list(""), ["b102", "v0.1.0", "b101", "b100"]);
    assert_eq!(list("?per_page=2&page=1"), ["b102", "v0.1.0"]);
    assert_eq!(list("?per_page=2&page=2"), ["b101", "b100"]);
    assert!(list("?per_page=2&page=3").is_empty());
    let all = get(&format!("{}/releases?per_page=100", m.api_base())).json();
    assert_eq!(
        all[3]["assets"].as_array().unwrap().len(),
        0,
        "release with no assets"
    );
    assert_eq!(all[2]["assets"][0]["name"], "a.tar.gz");
    assert_eq!(all[1]["prerelease"], false);
    // add_release on an existing tag only changes the flag.
    m.add_release("b101", false);
    let v = get(&format!("{}/releases/tags/b101", m.api_base())).json();
    assert_eq!(
        (v["prerelease"].as_bool(), v["assets"][0]["name"].as_str()),
        (Some(false), Some("a.tar.gz"))
    );
    let latest = get(&format!("{}/releases/latest", m.api_base())).json();
    // GitHub's "latest" skips prereleases: it is the v0 tag, not a bNNNN build.
    assert_eq!(latest["tag_name"], "v0.1.0");
}

#[test]
fn authorization_is_accepted_and_logged() {
    let (m, url) = mirror_with(pattern(5));
    let api = format!("{}/releases/tags/{TAG}", m.api_base());
    let r = request(
        "GET",
        &api,
        &[
            ("Authorization", "Bearer test-token"),
            ("User-Agent", "t/1"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(get(&url).status, 200);
    let log = m.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].authorization.as_deref(), Some("Bearer test-token"));
    assert_eq!(log[0].user_agent.as_deref(), Some("t/1"));
    assert_eq!(log[1].method, "GET");
    assert_eq!(log[1].target, format!("/download/{TAG}/{NAME}"));
    assert_eq!(log[1].authorization, None);
}

#[test]
fn other_methods_and_garbage_are_refused() {
    let (_m, url) = mirror_with(pattern(5));
    assert_eq!(request("POST", &url, &[]).status, 405);
    let (addr, _) = split_url(&url);
    let mut s = TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut s, b"nonsense\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
}

#[test]
fn throttle_caps_bandwidth_per_connection() {
    let data = pattern(60_000);
    let (m, url) = mirror_with(data.clone());
    m.set_throttle(Some(100_000));
    let t = Instant::now();
    assert_eq!(get(&url).body, data);
    let slow = t.elapsed();
    assert!(slow >= Duration::from_millis(550), "{slow:?}");
    m.set_throttle(None);
    let t = Instant::now();
    assert_eq!(get(&url).body, data);
    assert!(t.elapsed() < slow);
}

#[test]
fn parallel_downloads_are_each_served_and_counted() {
    let data = pattern(200_000);
    let (m, url) = mirror_with(data.clone());
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(|| get(&url).body)).collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), data);
        }
    });
    assert_eq!(m.hits(TAG, NAME), 8);
}

#[test]
fn drop_stops_the_server_even_mid_stall() {
    let (m, url) = mirror_with(pattern(100));
    m.inject(
        TAG,
        NAME,
        [Fault::Stall {
            after: 10,
            duration: Duration::from_secs(3600),
        }],
    );
    let mut s = open("GET", &url, &[]);
    read_head(&mut s);
    let mut first = [0u8; 10];
    s.read_exact(&mut first).unwrap();
    let (addr, _) = split_url(&url);
    let t = Instant::now();
    drop(m);
    // The stalled connection closes promptly, and nobody listens any more.
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn a_real_client_follows_the_redirect_and_sees_faults() {
    let data = pattern(40_000);
    let (m, url) = mirror_with(data.clone());
    m.inject(
        TAG,
        NAME,
        [
            Fault::Redirect,
            Fault::Truncate { after: 100 },
            Fault::Status(503),
        ],
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent.get(&url).call().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.body_mut().read_to_vec().unwrap(), data);
    let mut truncated = agent.get(&url).call().unwrap();
    assert!(
        truncated.body_mut().read_to_vec().is_err(),
        "ureq notices the short body"
    );
    assert_eq!(agent.get(&url).call().unwrap().status(), 503);
    assert_eq!(m.hits(TAG, NAME), 3);
}

/// Peak resident memory of this process so far, from /proc (Linux).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
#[ignore = "writes and serves 1 GiB; run with --release -- --ignored"]
fn a_one_gib_file_is_streamed_with_flat_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("llama-b9-bin-ubuntu-x64.tar.gz");
    let before = peak_rss_kib();
    let d =
        llama_prebuilt_test_support::archives::write_large_tar_gz(&path, "b9", 1 << 30).unwrap();
    let m = Mirror::start().unwrap();
    m.add_asset_file("b9", "big.tar.gz", &path);
    let mut s = open("GET", &format!("{}/b9/big.tar.gz", m.download_base()), &[]);
    let (status, _) = read_head(&mut s);
    assert_eq!(status, 200);
    let got = std::io::copy(&mut s, &mut std::io::sink()).unwrap();
    assert_eq!(got, d.size);
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "peak RSS grew by {grown} KiB");
}
