//! Which RPC endpoints a live model of this process holds connections to.
//!
//! A loaded model's buffers keep llama.cpp's socket to each server it uses open, and a
//! `ggml-rpc-server` serves one client at a time. A handshake of ours to such a server would
//! wait until the model is dropped, so [`Model::load`](crate::Model::load) skips the liveness
//! check for endpoints that are leased here (and reuses llama.cpp's open connection).

use std::collections::HashMap;
use std::sync::Mutex;

use super::RpcEndpoint;

static LEASES: Mutex<Option<HashMap<RpcEndpoint, usize>>> = Mutex::new(None);

/// Counts one live model using `endpoint` until dropped. [`RawModel`](crate::model) holds its
/// leases in a field, so they drop after `llama_model_free` closed the model's buffers.
#[derive(Debug)]
pub(crate) struct RpcLease {
    endpoint: RpcEndpoint,
}

impl RpcLease {
    pub(crate) fn new(endpoint: RpcEndpoint) -> RpcLease {
        let mut leases = LEASES.lock().unwrap_or_else(|p| p.into_inner());
        *leases
            .get_or_insert_with(HashMap::new)
            .entry(endpoint.clone())
            .or_insert(0) += 1;
        RpcLease { endpoint }
    }
}

impl Drop for RpcLease {
    fn drop(&mut self) {
        let mut leases = LEASES.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = leases.as_mut()
            && let Some(count) = map.get_mut(&self.endpoint)
        {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.endpoint);
            }
        }
    }
}

/// Whether a live model holds a connection to `endpoint`.
pub(crate) fn endpoint_in_use(endpoint: &RpcEndpoint) -> bool {
    LEASES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .is_some_and(|map| map.contains_key(endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_count_per_endpoint() {
        let a = RpcEndpoint::parse("127.0.0.1:1").unwrap();
        let b = RpcEndpoint::parse("127.0.0.1:2").unwrap();
        assert!(!endpoint_in_use(&a));
        let first = RpcLease::new(a.clone());
        let second = RpcLease::new(a.clone());
        assert!(endpoint_in_use(&a));
        assert!(!endpoint_in_use(&b));
        drop(first);
        assert!(endpoint_in_use(&a));
        drop(second);
        assert!(!endpoint_in_use(&a));
    }
}
