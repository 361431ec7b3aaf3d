//! Who holds a TCP port this host could not listen on: the listening socket's inode from
//! `/proc/net/tcp` and `tcp6`, then the process with that socket among its open files. Linux
//! only, best effort: a process of another user cannot be looked into without privileges, and
//! then only "another process" can be said.

use std::path::Path;

/// Longest list of processes looked into for one answer (a machine has far fewer).
const MAX_PROCESSES_SCANNED: usize = 100_000;
/// `st` of a listening socket in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";

/// `pid N (NAME)` of the process listening on `addr`'s port, if the system tells.
pub fn describe(addr: &str) -> Option<String> {
    let port: u16 = addr.rsplit_once(':')?.1.parse().ok()?;
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let proc_dir = std::fs::read_dir("/proc").ok()?;
    for entry in proc_dir.flatten().take(MAX_PROCESSES_SCANNED) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if holds_any(&entry.path().join("fd"), &inodes) {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            return Some(format!("pid {pid} ({})", comm.trim()));
        }
    }
    None
}

/// Inodes of the sockets listening on `port` (any address, IPv4 or IPv6).
fn listening_inodes(port: u16) -> Vec<String> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| listening_in(&text, port))
        .collect()
}

/// The inodes of `/proc/net/tcp`-format `text` whose local port is `port` and state LISTEN.
fn listening_in(text: &str, port: u16) -> Vec<String> {
    let wanted = format!("{port:04X}");
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            let inode = fields.get(9)?;
            let (_, local_port) = local.rsplit_once(':')?;
            (local_port == wanted && *state == TCP_LISTEN && *inode != "0")
                .then(|| inode.to_string())
        })
        .collect()
}

fn holds_any(fd_dir: &Path, inodes: &[String]) -> bool {
    let Ok(fds) = std::fs::read_dir(fd_dir) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|target| {
                let target = target.to_str()?.to_string();
                let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
                Some(inodes.iter().any(|i| i == inode))
            })
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listening_socket_of_a_port_in_the_kernel_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0\n   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0\n   2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4244 1 0\n";
        assert_eq!(listening_in(table, 8080), vec!["4242".to_string()]);
        assert_eq!(listening_in(table, 8081), vec!["4244".to_string()]);
        assert!(listening_in(table, 9).is_empty());
    }

    #[test]
    fn names_this_process_as_the_holder_of_its_own_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let holder = describe(&addr).expect("this process holds it");
        assert!(
            holder.starts_with(&format!("pid {} (", std::process::id())),
            "{holder}"
        );
    }
}
