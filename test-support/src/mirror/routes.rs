//! Serves one connection: parse the request, route it, apply any queued fault, respond, close.

use std::io::{self, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use super::api;
use super::http::{self, BodyPlan, Request};
use super::state::{Asset, RequestLog, key};
use super::{API_PATH, DOWNLOAD_PATH, Fault, Inner, RAW_PATH, REDIRECT_PATH};

/// How long a connection may sit without sending its request head. Bounds every thread.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write may block on a client that stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn serve_connection(stream: TcpStream, inner: &Inner) {
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut out = stream;
    let req = match http::read_request(&mut BufReader::new(read_half)) {
        Ok(Some(req)) => req,
        Ok(None) => return,
        Err(_) => {
            let _ = http::write_simple(&mut out, 400, "text/plain", b"bad request\n", false, &[]);
            let _ = out.shutdown(Shutdown::Write);
            return;
        }
    };
    inner.state().log.push(RequestLog {
        method: req.method.clone(),
        target: req.target.clone(),
        authorization: req.header("authorization").map(str::to_owned),
        user_agent: req.header("user-agent").map(str::to_owned),
    });
    // Errors here are the client hanging up or a deliberate fault; nothing to report.
    let _ = route(&req, &mut out, inner);
    let _ = out.flush();
    let _ = out.shutdown(Shutdown::Write);
}

fn route(req: &Request, out: &mut TcpStream, inner: &Inner) -> io::Result<()> {
    let head_only = match req.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => {
            return http::write_simple(
                out,
                405,
                "text/plain",
                b"GET or HEAD only\n",
                false,
                &[("Allow", "GET, HEAD")],
            );
        }
    };
    let path = req.path.as_str();
    if let Some(rest) = path.strip_prefix(DOWNLOAD_PATH) {
        if let Some((tag, name)) = tag_and_name(rest) {
            return download(out, inner, &tag, &name, head_only);
        }
    } else if let Some(rest) = path.strip_prefix(REDIRECT_PATH) {
        if let Some((tag, name)) = tag_and_name(rest) {
            return redirect_target(out, inner, &tag, &name, head_only);
        }
    } else if let Some(rest) = path
        .strip_prefix(RAW_PATH)
        .and_then(|r| r.strip_prefix('/'))
    {
        if let Some((tag, file)) = rest
            .split_once('/')
            .filter(|(t, f)| !t.is_empty() && !f.is_empty())
        {
            return download(
                out,
                inner,
                &http::percent_decode(tag),
                &format!("raw:{file}"),
                head_only,
            );
        }
    } else if let Some(rest) = path.strip_prefix(API_PATH) {
        inner.state().api_hits += 1;
        return api_route(req, rest, out, inner, head_only);
    }
    not_found(out, head_only)
}

/// `/{tag}/{name}` with exactly two non-empty segments.
fn tag_and_name(rest: &str) -> Option<(String, String)> {
    let rest = rest.strip_prefix('/')?;
    let (tag, name) = rest.split_once('/')?;
    if tag.is_empty() || name.is_empty() || name.contains('/') {
        return None;
    }
    Some((http::percent_decode(tag), http::percent_decode(name)))
}

fn not_found(out: &mut TcpStream, head_only: bool) -> io::Result<()> {
    http::write_simple(out, 404, "text/plain", b"Not Found\n", head_only, &[])
}

/// The 200 headers of `asset`, or a 404 when it does not exist; the asset when its body is to
/// follow (a GET).
fn asset_head(
    out: &mut TcpStream,
    asset: Option<Arc<Asset>>,
    head_only: bool,
) -> io::Result<Option<Arc<Asset>>> {
    let Some(asset) = asset else {
        not_found(out, head_only)?;
        return Ok(None);
    };
    http::write_head(
        out,
        200,
        asset.size,
        &[("Content-Type", "application/octet-stream")],
    )?;
    Ok((!head_only).then_some(asset))
}

/// The primary asset URL: counts the hit and applies the next queued fault (GET only).
fn download(
    out: &mut TcpStream,
    inner: &Inner,
    tag: &str,
    name: &str,
    head_only: bool,
) -> io::Result<()> {
    let k = key(tag, name);
    let (asset, fault, throttle) = {
        let mut st = inner.state();
        let fault = if head_only {
            None
        } else {
            *st.hits.entry(k.clone()).or_default() += 1;
            st.faults.get_mut(&k).and_then(|q| q.pop_front())
        };
        (st.assets.get(&k).cloned(), fault, st.throttle)
    };
    match fault {
        Some(Fault::NotFound) => return not_found(out, false),
        Some(Fault::Status(code)) => {
            let body = format!("injected status {code}\n");
            return http::write_simple(out, code, "text/plain", body.as_bytes(), false, &[]);
        }
        Some(Fault::Redirect) => {
            let location = format!("{}/{tag}/{name}", inner.url(REDIRECT_PATH));
            return http::write_simple(
                out,
                302,
                "text/plain",
                b"",
                false,
                &[("Location", &location)],
            );
        }
        _ => {}
    }
    let Some(asset) = asset_head(out, asset, head_only)? else {
        return Ok(());
    };
    let mut plan = BodyPlan {
        limit: asset.size,
        corrupt: false,
        throttle,
    };
    match fault {
        // Headers promised the full length; the socket closes without a body.
        Some(Fault::Reset) => return Ok(()),
        Some(Fault::Truncate { after }) => plan.limit = after.min(asset.size),
        Some(Fault::Stall { after, .. }) => plan.limit = after.min(asset.size),
        Some(Fault::WrongBytes) => plan.corrupt = true,
        _ => {}
    }
    http::send_body(out, &mut *asset.open()?, &plan, &inner.shutdown)?;
    if let Some(Fault::Stall { duration, .. }) = fault {
        http::interruptible_sleep(duration, &inner.shutdown);
    }
    Ok(())
}

/// Where a `Redirect` fault points: the same asset, served normally, counted separately.
fn redirect_target(
    out: &mut TcpStream,
    inner: &Inner,
    tag: &str,
    name: &str,
    head_only: bool,
) -> io::Result<()> {
    let k = key(tag, name);
    let (asset, throttle) = {
        let mut st = inner.state();
        if !head_only {
            *st.redirect_hits.entry(k.clone()).or_default() += 1;
        }
        (st.assets.get(&k).cloned(), st.throttle)
    };
    let Some(asset) = asset_head(out, asset, head_only)? else {
        return Ok(());
    };
    let plan = BodyPlan {
        limit: asset.size,
        corrupt: false,
        throttle,
    };
    http::send_body(out, &mut *asset.open()?, &plan, &inner.shutdown)?;
    Ok(())
}

/// `/releases/tags/{tag}`, `/releases/latest` and `/releases?per_page=N&page=P`.
fn api_route(
    req: &Request,
    rest: &str,
    out: &mut TcpStream,
    inner: &Inner,
    head_only: bool,
) -> io::Result<()> {
    let download_base = inner.url(DOWNLOAD_PATH);
    let json_404 = |out: &mut TcpStream| {
        http::write_simple(
            out,
            404,
            "application/json",
            &api::not_found_json(),
            head_only,
            &[],
        )
    };
    let body = if let Some(tag) = rest.strip_prefix("/releases/tags/") {
        let tag = http::percent_decode(tag);
        let snap = {
            let st = inner.state();
            st.releases
                .iter()
                .position(|r| r.tag == tag)
                .map(|i| st.snapshot(i))
        };
        match snap {
            Some(s) => api::release_json(&s, &download_base)?,
            None => return json_404(out),
        }
    } else if rest == "/releases/latest" {
        // GitHub's "latest" skips prereleases, which is exactly why the fetch library must not
        // use it for bNNNN tags; served so a test can show that.
        let snap = {
            let st = inner.state();
            st.releases
                .iter()
                .rposition(|r| !r.prerelease)
                .map(|i| st.snapshot(i))
        };
        match snap {
            Some(s) => api::release_json(&s, &download_base)?,
            None => return json_404(out),
        }
    } else if rest == "/releases" || rest == "/releases/" {
        let per_page = parse_param(req.query_param("per_page"), 30).clamp(1, 100);
        let page = parse_param(req.query_param("page"), 1).max(1);
        let snaps: Vec<_> = {
            let st = inner.state();
            (0..st.releases.len())
                .rev()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|i| st.snapshot(i))
                .collect()
        };
        let list = snaps
            .iter()
            .map(|s| api::release_json(s, &download_base))
            .collect::<io::Result<Vec<_>>>()?;
        serde_json::Value::Array(list)
    } else {
        return json_404(out);
    };
    let bytes = serde_json::to_vec_pretty(&body).map_err(io::Error::other)?;
    http::write_simple(
        out,
        200,
        "application/json; charset=utf-8",
        &bytes,
        head_only,
        &[],
    )
}

fn parse_param(v: Option<&str>, default: usize) -> usize {
    v.and_then(|v| v.parse().ok()).unwrap_or(default)
}
