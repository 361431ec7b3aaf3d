//! Stable hashes for rendezvous ranking: the same bytes give the same number on every
//! machine, build and run (no `std` hasher, whose output is not specified to be stable).

/// FNV-1a, 64 bits, over the parts separated by a 0xff byte, then [`mix`]ed.
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0xff; // a byte that UTF-8 text never contains
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    mix(h)
}

/// The finaliser of MurmurHash3: spreads every input bit over the whole output.
pub fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// A host's rendezvous score for one spread of one component of one app: the spread's key
/// hash (of app, component and spread names) combined with the host's id hash.
pub fn score(spread_key: u64, host_hash: u64) -> u64 {
    mix(spread_key ^ host_hash.rotate_left(29))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_pinned() {
        // These values are part of the placement contract: changing them moves replicas on
        // upgrade. They must only change on purpose.
        // FNV-1a("a") = 0xaf63dc4c8601ec8c, then the MurmurHash3 finaliser; the expected
        // numbers were computed apart from this code (a few lines of Python).
        assert_eq!(mix(0xaf63_dc4c_8601_ec8c), 0x82a2_a958_a9be_ce5b);
        assert_eq!(stable_hash(&["a"]), 0x82a2_a958_a9be_ce5b);
        assert_eq!(
            stable_hash(&["hello-world", "http-component", "eastcoast"]),
            0xc53f_2513_c547_7285
        );
        assert_eq!(mix(1), 0xb456_bcfc_34c2_cb2c);
        assert_eq!(score(1, 2), 0x7475_0f8a_b700_919d);
        assert_ne!(stable_hash(&["ab", "c"]), stable_hash(&["a", "bc"]));
    }
}
