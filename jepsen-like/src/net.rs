//! Network partitions between the nodes' loopback addresses, made with iptables: packets from
//! one node's address to another's are dropped (not refused), in a chain of our own that is
//! hooked into INPUT and removed when healed. Clients (from 127.0.0.1) still reach every node,
//! as in Jepsen, where clients talk to the node they chose.

use std::collections::BTreeSet;
use std::process::Command;

const CHAIN: &str = "FLOTILLA_JEPSEN";

fn iptables(args: &[&str]) -> Result<(), String> {
    let out = Command::new("iptables")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run iptables (apt-get install iptables; needs root): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "iptables {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The iptables chain of a run; [`Network::heal`] and dropping it remove every rule.
pub struct Network {
    ips: Vec<String>,
}

impl Network {
    /// Creates the (empty) chain and hooks it into INPUT; fails clearly without iptables or root.
    pub fn new(ips: Vec<String>) -> Result<Self, String> {
        let _ = Self::remove();
        iptables(&["-w", "-N", CHAIN])?;
        iptables(&["-w", "-I", "INPUT", "-j", CHAIN])?;
        Ok(Network { ips })
    }

    fn remove() -> Result<(), String> {
        let _ = iptables(&["-w", "-D", "INPUT", "-j", CHAIN]);
        let _ = iptables(&["-w", "-F", CHAIN]);
        iptables(&["-w", "-X", CHAIN])
    }

    /// Cuts every link between nodes `a` and `b`, both ways, for each pair in `cuts`.
    pub fn cut(&self, cuts: &BTreeSet<(usize, usize)>) -> Result<(), String> {
        for &(a, b) in cuts {
            for (from, to) in [(a, b), (b, a)] {
                iptables(&[
                    "-w",
                    "-A",
                    CHAIN,
                    "-s",
                    &self.ips[from],
                    "-d",
                    &self.ips[to],
                    "-j",
                    "DROP",
                ])?;
            }
        }
        Ok(())
    }

    /// Removes every cut.
    pub fn heal(&self) -> Result<(), String> {
        iptables(&["-w", "-F", CHAIN])
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Self::remove();
    }
}

/// The pairs to cut so that `groups` cannot reach each other (every node in one group from
/// every node in another).
pub fn separate(groups: &[Vec<usize>]) -> BTreeSet<(usize, usize)> {
    let mut cuts = BTreeSet::new();
    for (i, g) in groups.iter().enumerate() {
        for h in &groups[i + 1..] {
            for &a in g {
                for &b in h {
                    cuts.insert((a.min(b), a.max(b)));
                }
            }
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separation_cuts_exactly_the_links_between_groups() {
        let cuts = separate(&[vec![0], vec![1, 2]]);
        assert_eq!(cuts, BTreeSet::from([(0, 1), (0, 2)]));
        let cuts = separate(&[vec![3, 0], vec![1], vec![2, 4]]);
        assert_eq!(cuts.len(), 2 + 4 + 2);
        assert!(!cuts.contains(&(0, 3)) && !cuts.contains(&(2, 4)));
    }
}
