//! Splitting a replica count over weighted spreads by the largest-remainder method.

/// Splits `replicas` over `weights`: each gets `floor(replicas × w / Σw)`; the leftover goes
/// one each to the largest fractional parts, ties broken by higher weight, then by position.
/// All-zero weights (rejected by validation) give nothing to anyone.
pub fn largest_remainder(replicas: u32, weights: &[u32]) -> Vec<u32> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if total == 0 {
        return vec![0; weights.len()];
    }
    let mut shares = Vec::with_capacity(weights.len());
    // (remainder numerator, weight, index); remainders compare exactly as integers over `total`.
    let mut remainders = Vec::with_capacity(weights.len());
    let mut given: u64 = 0;
    for (i, &w) in weights.iter().enumerate() {
        let exact = u64::from(replicas) * u64::from(w);
        let share = exact / total;
        given += share;
        shares.push(share as u32);
        remainders.push((exact % total, w, i));
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let leftover = u64::from(replicas) - given;
    for &(_, _, i) in remainders.iter().take(leftover as usize) {
        shares[i] += 1;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::largest_remainder as split;

    #[test]
    fn design_reference_values() {
        assert_eq!(split(100, &[80, 20]), vec![80, 20]);
        assert_eq!(split(4, &[80, 20]), vec![3, 1]);
        assert_eq!(split(7, &[30, 40]), vec![3, 4]);
        assert_eq!(split(412, &[50, 25, 25]), vec![206, 103, 103]);
        assert_eq!(split(5, &[40, 40, 20]), vec![2, 2, 1]);
        assert_eq!(split(12, &[25, 25, 50]), vec![3, 3, 6]);
    }

    #[test]
    fn ties_go_to_higher_weight_then_manifest_order() {
        // 1 @ 50/50: equal remainders and weights: the first in manifest order wins.
        assert_eq!(split(1, &[50, 50]), vec![1, 0]);
        // 3 @ 1/1/1/1... equal: the first three.
        assert_eq!(split(3, &[1, 1, 1, 1]), vec![1, 1, 1, 0]);
        // 1 @ 30/60/30 of 120: remainders 0.25, 0.5, 0.25 -> the middle.
        assert_eq!(split(1, &[30, 60, 30]), vec![0, 1, 0]);
    }

    #[test]
    fn edge_cases() {
        assert_eq!(split(0, &[1, 2]), vec![0, 0]);
        assert_eq!(split(10, &[0, 0]), vec![0, 0]);
        assert_eq!(split(10, &[0, 5]), vec![0, 10]);
        assert_eq!(
            split(100_000, &[u32::MAX, u32::MAX, 1]),
            vec![50_000, 50_000, 0]
        );
    }
}
