//! A JSON number's text as an exact decimal, in any notation, or a refusal.
//!
//! `rust_decimal`'s own scientific parser rounds (`0.99999999999999999999999999999e0`
//! would become 1), and its plain parser refuses `1.000…0` with more than 28 decimal
//! places although the value fits. Here the text is read as sign, digits and a power of
//! ten, trailing zeros are dropped only when needed to fit, and anything the 96-bit
//! mantissa and 28 decimal places cannot hold exactly is refused, whatever its notation.

use rust_decimal::Decimal;

/// The most decimal places a [`Decimal`] holds.
const SCALE_MAX: i64 = 28;
/// The most digits a 96-bit mantissa may have (2^96 has 29).
const DIGITS_MAX: usize = 29;

/// `text` (JSON number grammar: `-?int(.frac)?([eE][+-]?exp)?`) as the exact decimal it
/// names, keeping the scale it was written with where it fits (`5.0` stays `5.0`).
pub fn decimal(text: &str) -> Result<Decimal, String> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], parse_exponent(&unsigned[at + 1..])?),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let well_formed = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !well_formed(int) || !well_formed(frac) || (mantissa.contains('.') && frac.is_empty()) {
        return Err(format!("{text} is not a number"));
    }
    let mut digits: String = format!("{int}{frac}").trim_start_matches('0').to_string();
    // The value is digits × 10^-scale; an exponent past i64 saturates and is judged below.
    let mut scale = (frac.len() as i64).saturating_sub(exponent);
    if digits.is_empty() {
        return Ok(Decimal::new(0, scale.clamp(0, SCALE_MAX) as u32));
    }
    let not_exact = || {
        format!(
            "{text} cannot be held exactly: an amount has at most {SCALE_MAX} decimal places and \
             {DIGITS_MAX} significant digits (below 2^96), after dropping trailing zeros"
        )
    };
    // Trailing zeros go only as far as needed: past 28 places, or past 96 bits.
    while (scale > SCALE_MAX || !fits(&digits)) && scale > 0 && digits.ends_with('0') {
        digits.pop();
        scale -= 1;
    }
    if scale > SCALE_MAX {
        return Err(not_exact());
    }
    if scale < 0 {
        if (digits.len() as i64).saturating_sub(scale) > DIGITS_MAX as i64 {
            return Err(not_exact());
        }
        digits.extend(std::iter::repeat_n('0', scale.unsigned_abs() as usize));
        scale = 0;
    }
    if !fits(&digits) {
        return Err(not_exact());
    }
    let magnitude: i128 = digits.parse().map_err(|_| not_exact())?;
    let signed = if negative { -magnitude } else { magnitude };
    Decimal::try_from_i128_with_scale(signed, scale as u32).map_err(|_| not_exact())
}

/// Whether `digits` (no leading zero) is below 2^96, the bound of a Decimal's mantissa.
fn fits(digits: &str) -> bool {
    const TWO_TO_THE_96: &str = "79228162514264337593543950336";
    // Of two digit strings of one length, the smaller number sorts first.
    digits.len() < TWO_TO_THE_96.len() || (digits.len() == TWO_TO_THE_96.len() && digits < TWO_TO_THE_96)
}

/// The exponent's value, saturating at i64's bounds (a mantissa of zeros makes any
/// exponent harmless; any other is refused by the bounds of scale and size).
fn parse_exponent(text: &str) -> Result<i64, String> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text} is not an exponent"));
    }
    let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX);
    Ok(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(text: &str) -> String {
        decimal(text).unwrap_or_else(|e| panic!("{text}: {e}")).to_string()
    }

    #[test]
    fn every_notation_of_an_exact_value_is_taken_as_written() {
        assert_eq!(exact("1.5e2"), "150");
        assert_eq!(exact("1.50e0"), "1.50");
        assert_eq!(exact("5.0"), "5.0");
        assert_eq!(exact("0.10"), "0.10");
        assert_eq!(exact("-12.5E-1"), "-1.25");
        assert_eq!(exact("125e-2"), "1.25");
        assert_eq!(exact("0e99999999999999999999"), "0");
        assert_eq!(exact("-0.000"), "0.000");
        assert_eq!(exact("1.0000000000000000000000000000000"), "1.0000000000000000000000000000");
        assert_eq!(exact("79228162514264337593543950335"), "79228162514264337593543950335");
        assert_eq!(exact("7.9228162514264337593543950335e28"), "79228162514264337593543950335");
        assert_eq!(exact("0.0000000000000000000000000001"), "0.0000000000000000000000000001");
        assert_eq!(exact("1e-28"), "0.0000000000000000000000000001");
    }

    #[test]
    fn what_cannot_be_held_exactly_is_refused_in_any_notation() {
        for text in [
            "0.99999999999999999999999999999e0",
            "0.99999999999999999999999999999",
            "0.0100000000000000000000000000001e0",
            "1e-29",
            "79228162514264337593543950336",
            "7.9228162514264337593543950336e28",
            "1e29",
            "1e99999999999999999999",
            "1e-99999999999999999999",
        ] {
            assert!(decimal(text).is_err(), "{text} was taken as {:?}", decimal(text));
        }
    }

    /// The value a number's text names, as (negative, digits without leading or trailing
    /// zeros, power of ten of the last digit); None for zero. Independent of `decimal`.
    fn value(text: &str) -> Option<(bool, String, i64)> {
        let negative = text.starts_with('-');
        let text = text.trim_start_matches('-');
        let (mantissa, exponent) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let mut power = exponent.parse::<i64>().unwrap() - frac.len() as i64;
        let digits = format!("{int}{frac}");
        let trimmed = digits.trim_end_matches('0');
        power += (digits.len() - trimmed.len()) as i64;
        let significant = trimmed.trim_start_matches('0');
        (!significant.is_empty()).then(|| (negative, significant.to_string(), power))
    }

    /// Whether a Decimal can hold the value exactly: a mantissa below 2^96 at a scale of
    /// at most 28.
    fn representable(digits: &str, power: i64) -> bool {
        let below_2_96 = |d: &str| d.len() <= DIGITS_MAX && d.parse::<u128>().unwrap() < 1 << 96;
        if power < 0 {
            -power <= SCALE_MAX && below_2_96(digits)
        } else {
            digits.len() as i64 + power <= DIGITS_MAX as i64
                && below_2_96(&format!("{digits}{}", "0".repeat(power as usize)))
        }
    }

    proptest::proptest! {
        #[test]
        fn a_number_is_taken_exactly_or_refused(text in "-?(0|[1-9][0-9]{0,34})(\\.[0-9]{1,34})?([eE][-+]?[0-9]{1,2})?") {
            let wanted = value(&text);
            match decimal(&text) {
                Ok(d) => proptest::prop_assert_eq!(value(&d.to_string()).map(|(_, digits, power)| (wanted.as_ref().unwrap().0, digits, power)), wanted),
                Err(_) => {
                    let (_, digits, power) = wanted.expect("zero is always exact");
                    proptest::prop_assert!(!representable(&digits, power), "{} was refused", text);
                }
            }
        }

        #[test]
        fn every_decimal_in_every_notation_is_taken_exactly(
            mantissa in -(1i128 << 96) + 1..(1i128 << 96),
            scale in 0u32..=28,
            shift in -30i64..30,
            zeros in 0usize..5,
        ) {
            let wanted = Decimal::from_i128_with_scale(mantissa, scale);
            // mantissa × 10^-scale written as (mantissa × 10^-(scale + shift)) e shift.
            let digits = mantissa.unsigned_abs().to_string();
            let point = scale as i64 + shift;
            let written = if point <= 0 {
                format!("{digits}{}", "0".repeat(point.unsigned_abs() as usize))
            } else {
                let padded = format!("{}{digits}", "0".repeat((point as usize + 1).saturating_sub(digits.len())));
                let (int, frac) = padded.split_at(padded.len() - point as usize);
                format!("{int}.{frac}{}", "0".repeat(zeros))
            };
            let sign = if mantissa < 0 { "-" } else { "" };
            let text = format!("{sign}{written}e{shift}");
            proptest::prop_assert_eq!(decimal(&text), Ok(wanted), "{}", text);
        }
    }
}
