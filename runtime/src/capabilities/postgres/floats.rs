//! `hashable-f64` (and `hashable-f32`, the same tuple): a float as `(mantissa, exponent, sign)`
//! the way `num`'s `integer_decode` splits it, so that the WIT type can be `Eq`. The value is
//! `sign × mantissa × 2^exponent` whichever width split it; infinities and NaN are told by the
//! all-ones exponent of an f64 (972 after the bias) or of an f32 (105).

/// `(mantissa, exponent, sign)`.
pub type Hashable = (u64, i16, i8);

const F64_SPECIAL_EXPONENT: i16 = 2047 - 1075;
const F32_SPECIAL_EXPONENT: i16 = 255 - 150;
const F64_IMPLICIT_BIT: u64 = 1 << 52;
const F32_IMPLICIT_BIT: u64 = 1 << 23;

/// An f64 split as `integer_decode` does.
pub fn from_f64(value: f64) -> Hashable {
    let bits = value.to_bits();
    let sign = if bits >> 63 == 0 { 1 } else { -1 };
    let raw_exponent = ((bits >> 52) & 0x7ff) as i16;
    let fraction = bits & (F64_IMPLICIT_BIT - 1);
    let mantissa = if raw_exponent == 0 {
        fraction << 1
    } else {
        fraction | F64_IMPLICIT_BIT
    };
    (mantissa, raw_exponent - 1075, sign)
}

/// An f32 split as `integer_decode` does.
pub fn from_f32(value: f32) -> Hashable {
    let bits = value.to_bits();
    let sign = if bits >> 31 == 0 { 1 } else { -1 };
    let raw_exponent = ((bits >> 23) & 0xff) as i16;
    let fraction = u64::from(bits) & (F32_IMPLICIT_BIT - 1);
    let mantissa = if raw_exponent == 0 {
        fraction << 1
    } else {
        fraction | F32_IMPLICIT_BIT
    };
    (mantissa, raw_exponent - 150, sign)
}

/// The float a split stands for (split from an f64 or an f32).
pub fn to_f64((mantissa, exponent, sign): Hashable) -> f64 {
    let sign = if sign < 0 { -1.0 } else { 1.0 };
    let special = |implicit: u64| {
        if mantissa == implicit {
            sign * f64::INFINITY
        } else {
            f64::NAN
        }
    };
    if exponent == F64_SPECIAL_EXPONENT && mantissa & F64_IMPLICIT_BIT != 0 {
        return special(F64_IMPLICIT_BIT);
    }
    if exponent == F32_SPECIAL_EXPONENT
        && (F32_IMPLICIT_BIT..F32_IMPLICIT_BIT << 1).contains(&mantissa)
    {
        return special(F32_IMPLICIT_BIT);
    }
    // In two steps: 2^exponent alone may not be representable while the product is.
    let half = i32::from(exponent) / 2;
    sign * mantissa as f64 * 2f64.powi(half) * 2f64.powi(i32::from(exponent) - half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_survive_the_split() {
        for v in [
            0.0,
            -0.0,
            1.5,
            -2.25e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert_eq!(to_f64(from_f64(v)).to_bits(), v.to_bits(), "{v}");
        }
        assert!(to_f64(from_f64(f64::NAN)).is_nan());
        for v in [0.1f32, -3.5, f32::MAX, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(to_f64(from_f32(v)) as f32, v, "{v}");
        }
        assert!(to_f64(from_f32(f32::NAN)).is_nan());
    }
}
