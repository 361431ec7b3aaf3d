//! Addresses for nodes: free loopback ports, and the per-node loopback IPs (127.0.0.11, .12,
//! …) that fault injection needs to tell nodes apart.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// Tries at finding one port free on several IPs before giving up.
const PORT_TRIES: usize = 100;

/// A free `127.0.0.1` address (bound, then released for the node to take), never one this
/// process handed out before.
pub fn free_addr() -> String {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().expect("port registry");
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().expect("local address");
        if given.insert(addr.port()) {
            return addr.to_string();
        }
    }
}

/// The loopback address of node `i` when every node has an IP of its own.
pub fn node_ip(i: usize) -> String {
    format!("127.0.0.{}", 11 + i)
}

/// A port free on every one of `ips`.
pub fn free_port_on(ips: &[String]) -> Result<u16, String> {
    let first = ips.first().ok_or("no address to find a port on")?;
    for _ in 0..PORT_TRIES {
        let held = TcpListener::bind(format!("{first}:0"))
            .map_err(|e| format!("cannot bind {first}: {e}"))?;
        let port = held.local_addr().map_err(|e| e.to_string())?.port();
        if ips[1..]
            .iter()
            .all(|ip| TcpListener::bind((ip.as_str(), port)).is_ok())
        {
            return Ok(port);
        }
    }
    Err(format!("no port is free on every one of {ips:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_never_handed_out_twice() {
        let a: BTreeSet<String> = (0..20).map(|_| free_addr()).collect();
        assert_eq!(a.len(), 20);
    }

    #[test]
    fn a_shared_port_is_bindable_on_each_ip() {
        let ips = vec![node_ip(0), node_ip(1)];
        let port = free_port_on(&ips).unwrap();
        for ip in &ips {
            TcpListener::bind((ip.as_str(), port)).unwrap();
        }
    }
}
