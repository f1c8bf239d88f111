//! `resource.Quantity` of k8s.io/apimachinery v0.34, reproduced bit for bit: parsing
//! (`ParseQuantity`), and the string `MarshalJSON` writes.
//!
//! Go keeps a parsed quantity either as a scaled `int64` (the fast path) or as an arbitrary
//! precision decimal (`inf.Dec`), remembers the input string when it is already in canonical
//! form, and otherwise prints a canonical form: the value with its trailing zeros folded into
//! an exponent that is a multiple of three (decimal formats) or of 2^10 (binary format), with the
//! matching suffix. This module follows the same code paths, including Go's quirks, because the
//! resulting string is hashed:
//!
//! * a canonical-looking input is echoed verbatim, sign and leading zeros included (`"+1"`,
//!   `"01"`, `"1e3"` and `"3Ki"` stay as they are);
//! * values below one nano are rounded up to `1n`; binary-format values are capped at
//!   `2^63-1`;
//! * a decimal-SI value whose canonical exponent has no suffix (above `E`, e.g. `"1000E"`)
//!   loses its suffix (`"1"`): Go's suffix lookup fails silently;
//! * `int32` exponent arithmetic wraps around as in Go (`"1.5e-2147483648"` →
//!   `"150e2147483646"`).
//!
//! Numbers are kept as decimal digit strings, so arbitrarily long inputs are exact. Where Go
//! would materialise a power of ten with billions of digits (exponents near ±2^31 on the
//! arbitrary-precision path, which never finishes in Go) we compute the same value lazily.

use std::cmp::Ordering;
use std::fmt;

/// Why a string is not a valid quantity (the error `ParseQuantity` returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string does not match `^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$`.
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    /// The numeric part cannot be parsed.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// The suffix is not one of the known suffixes.
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

/// The serialization format a quantity remembers (Go's `resource.Format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `12e6`.
    DecimalExponent,
    /// `12Mi` (powers of 2^10).
    BinarySI,
    /// `12M` (powers of 10^3).
    DecimalSI,
}

/// A non-negative decimal `digits × 10^(-scale)` with a sign (`inf.Dec`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dec {
    negative: bool,
    /// Decimal digits (0..=9), most significant first, no leading zeros; empty means zero.
    digits: Vec<u8>,
    /// `inf.Dec` scale: the value is `digits × 10^(-scale)`.
    scale: i64,
}

impl Dec {
    fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    fn from_u128(v: u128, negative: bool) -> Dec {
        let mut digits: Vec<u8> = v.to_string().bytes().map(|b| b - b'0').collect();
        strip_leading_zeros(&mut digits);
        Dec {
            negative: negative && !digits.is_empty(),
            digits,
            scale: 0,
        }
    }

    fn from_i64(v: i64, scale: i64) -> Dec {
        let mut d = Dec::from_u128(u128::from(v.unsigned_abs()), v < 0);
        d.scale = scale;
        d
    }

    /// Value comparison (scales may differ).
    fn cmp_value(&self, other: &Dec) -> Ordering {
        match (self.sign(), other.sign()) {
            (a, b) if a != b => a.cmp(&b),
            (0, _) => Ordering::Equal,
            (s, _) => {
                let m = cmp_magnitude(&self.digits, -self.scale, &other.digits, -other.scale);
                if s < 0 { m.reverse() } else { m }
            }
        }
    }

    fn sign(&self) -> i8 {
        if self.is_zero() {
            0
        } else if self.negative {
            -1
        } else {
            1
        }
    }

    /// `Round(self, scale, RoundUp)`: rounds away from zero to at most `scale` fractional
    /// digits. Returns the result and whether it is exact. The result keeps a smaller scale
    /// when no rounding is needed (same value as Go's, which pads with zeros).
    fn round_up(&self, scale: i64) -> (Dec, bool) {
        if self.scale <= scale || self.is_zero() {
            return (self.clone(), true);
        }
        let drop = self.scale - scale;
        let len = i64::try_from(self.digits.len()).unwrap_or(i64::MAX);
        let (mut kept, exact) = if drop >= len {
            (vec![1], false)
        } else {
            let cut = usize::try_from(len - drop).unwrap_or(0);
            let exact = self.digits[cut..].iter().all(|&d| d == 0);
            let mut kept = self.digits[..cut].to_vec();
            if !exact {
                increment(&mut kept);
            }
            (kept, exact)
        };
        strip_leading_zeros(&mut kept);
        (
            Dec {
                negative: self.negative,
                digits: kept,
                scale,
            },
            exact,
        )
    }

    /// The value as an integer count of `10^-9`, when it has at most nine fractional digits
    /// and fits.
    fn to_nanos(&self) -> Option<i128> {
        if self.scale > 9 {
            return None;
        }
        let zeros = usize::try_from(9 - self.scale).ok()?;
        if self.digits.len() + zeros > 37 {
            return None;
        }
        let mut v: i128 = 0;
        for &d in &self.digits {
            v = v * 10 + i128::from(d);
        }
        for _ in 0..zeros {
            v *= 10;
        }
        Some(if self.negative { -v } else { v })
    }
}

fn strip_leading_zeros(digits: &mut Vec<u8>) {
    let first = digits.iter().position(|&d| d != 0).unwrap_or(digits.len());
    digits.drain(..first);
}

fn increment(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == 9 {
            *d = 0;
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, 1);
}

fn mul_small(digits: &mut Vec<u8>, factor: u32) {
    let mut carry: u64 = 0;
    for d in digits.iter_mut().rev() {
        let v = u64::from(*d) * u64::from(factor) + carry;
        *d = u8::try_from(v % 10).unwrap_or(0);
        carry = v / 10;
    }
    while carry > 0 {
        digits.insert(0, u8::try_from(carry % 10).unwrap_or(0));
        carry /= 10;
    }
}

fn trailing_zeros(digits: &[u8]) -> usize {
    digits.iter().rev().take_while(|&&d| d == 0).count()
}

/// Compares `a × 10^ea` with `b × 10^eb` (digit strings without leading zeros).
fn cmp_magnitude(a: &[u8], ea: i64, b: &[u8], eb: i64) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let la = i64::try_from(a.len())
        .unwrap_or(i64::MAX)
        .saturating_add(ea);
    let lb = i64::try_from(b.len())
        .unwrap_or(i64::MAX)
        .saturating_add(eb);
    if la != lb {
        return la.cmp(&lb);
    }
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        if x != y {
            return x.cmp(&y);
        }
    }
    Ordering::Equal
}

fn digits_to_string(negative: bool, digits: &[u8], extra_zeros: usize) -> String {
    let mut s = String::with_capacity(digits.len() + extra_zeros + 1);
    if digits.is_empty() {
        s.push('0');
        return s;
    }
    if negative {
        s.push('-');
    }
    s.extend(digits.iter().map(|d| char::from(b'0' + d)));
    s.extend(std::iter::repeat_n('0', extra_zeros));
    s
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Amount {
    /// Go's `int64Amount`: `value × 10^scale`.
    Int { value: i64, scale: i32 },
    /// Go's `infDecAmount`.
    Dec(Dec),
}

/// A parsed `resource.Quantity`, as Go holds it after `UnmarshalJSON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    amount: Amount,
    format: Format,
    /// The input string, kept by Go when it is already canonical.
    cached: Option<String>,
}

impl fmt::Display for Quantity {
    /// The string Go's `MarshalJSON` writes (between the quotes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cached {
            Some(s) => f.write_str(s),
            None => f.write_str(&self.canonical()),
        }
    }
}

impl Quantity {
    /// The zero quantity Go holds after decoding JSON `null` (marshals as `"0"`).
    pub fn zero() -> Quantity {
        Quantity {
            amount: Amount::Int { value: 0, scale: 0 },
            format: Format::DecimalSI,
            cached: None,
        }
    }

    /// `resource.ParseQuantity`: parses `s` exactly as given (no trimming).
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        parse_quantity(s)
    }

    /// `Quantity.UnmarshalJSON` for a JSON string: Go strips the quotes from the *raw* JSON
    /// text (escapes are not decoded), trims Unicode white space, then parses. A string that
    /// needs escaping in JSON (a tab, a quote…) therefore never parses, even at its ends.
    pub fn from_json_string(s: &str) -> Result<Quantity, QuantityError> {
        let mut raw = Vec::with_capacity(s.len());
        crate::gojson::push_string_body(&mut raw, s);
        let raw = String::from_utf8(raw).map_err(|_| QuantityError::FormatWrong)?;
        parse_quantity(raw.trim_matches(char::is_whitespace))
    }

    /// The format Go remembers for this quantity.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the value is zero (`Quantity.IsZero`).
    pub fn is_zero(&self) -> bool {
        match &self.amount {
            Amount::Int { value, .. } => *value == 0,
            Amount::Dec(d) => d.is_zero(),
        }
    }

    /// The canonical string (`CanonicalizeBytes`), ignoring any remembered input spelling.
    pub fn canonical(&self) -> String {
        if self.is_zero() {
            return "0".to_owned();
        }
        let mut format = self.format;
        let mut rounded: Option<Amount> = None;
        if format == Format::BinarySI {
            let v = self.as_dec();
            let lo = Dec::from_i64(-1024, 0);
            let hi = Dec::from_i64(1024, 0);
            if v.cmp_value(&lo) == Ordering::Greater && v.cmp_value(&hi) == Ordering::Less {
                format = Format::DecimalSI;
            } else {
                let (r, exact) = self.as_scale_zero();
                if exact {
                    rounded = Some(r);
                } else {
                    format = Format::DecimalSI;
                }
            }
        }
        match (format, rounded) {
            (Format::BinarySI, Some(r)) => {
                let (number, exponent) = canonical_base1024(&r);
                let suffix = match exponent {
                    1 => "Ki",
                    2 => "Mi",
                    3 => "Gi",
                    4 => "Ti",
                    5 => "Pi",
                    6 => "Ei",
                    _ => "",
                };
                number + suffix
            }
            _ => {
                let (number, exponent) = canonical_base10(&self.amount);
                number + &decimal_suffix(exponent, format)
            }
        }
    }

    fn as_dec(&self) -> Dec {
        match &self.amount {
            Amount::Int { value, scale } => Dec::from_i64(*value, -i64::from(*scale)),
            Amount::Dec(d) => d.clone(),
        }
    }

    /// `AsScale(0)`: the value rounded away from zero to an integer, and whether that is exact.
    fn as_scale_zero(&self) -> (Amount, bool) {
        match &self.amount {
            Amount::Int { value, scale } => {
                if *scale >= 0 {
                    (self.amount.clone(), true)
                } else {
                    let (v, exact) = negative_scale_int64(*value, -i64::from(*scale));
                    (Amount::Int { value: v, scale: 0 }, exact)
                }
            }
            Amount::Dec(d) => {
                let (r, exact) = d.round_up(0);
                (Amount::Dec(r), exact)
            }
        }
    }

    /// Whether two quantities have the same value (formats and spellings ignored).
    #[cfg(test)]
    pub(crate) fn value_eq(&self, other: &Quantity) -> bool {
        self.as_dec().cmp_value(&other.as_dec()) == Ordering::Equal
    }
}

fn decimal_suffix(exponent: i32, format: Format) -> String {
    match format {
        Format::DecimalExponent => {
            if exponent == 0 {
                String::new()
            } else {
                format!("e{exponent}")
            }
        }
        // Go looks the (base, exponent) pair up in its decimal suffix table; a missing entry
        // silently yields no suffix.
        _ => match exponent {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => "",
        }
        .to_owned(),
    }
}

/// `AsCanonicalBytes`: digits and an exponent that is a multiple of three.
fn canonical_base10(amount: &Amount) -> (String, i32) {
    match amount {
        Amount::Int { value, scale } => {
            let (mut amount, times) = remove_int64_factors(*value, 10);
            let mut exponent = scale.wrapping_add(times);
            match exponent % 3 {
                1 | -2 => match int64_multiply_scale(amount, 10) {
                    Some(v) => {
                        amount = v;
                        exponent = exponent.wrapping_sub(1);
                    }
                    None => {
                        return canonical_dec(&Dec::from_i64(
                            *value,
                            i64::from(scale.wrapping_neg()),
                        ));
                    }
                },
                2 | -1 => match int64_multiply_scale(amount, 100) {
                    Some(v) => {
                        amount = v;
                        exponent = exponent.wrapping_sub(2);
                    }
                    None => {
                        return canonical_dec(&Dec::from_i64(
                            *value,
                            i64::from(scale.wrapping_neg()),
                        ));
                    }
                },
                _ => {}
            }
            (amount.to_string(), exponent)
        }
        Amount::Dec(d) => canonical_dec(d),
    }
}

fn canonical_dec(d: &Dec) -> (String, i32) {
    let tz = trailing_zeros(&d.digits);
    let digits = &d.digits[..d.digits.len() - tz];
    // Go: exponent := int32(-scale); exponent += times — all in wrapping int32 arithmetic,
    // which equals the i64 sum truncated to 32 bits.
    #[allow(clippy::cast_possible_truncation)]
    let mut exponent = (i64::try_from(tz).unwrap_or(i64::MAX).wrapping_sub(d.scale)) as i32;
    let mut zeros = 0;
    while exponent % 3 != 0 {
        zeros += 1;
        exponent = exponent.wrapping_sub(1);
    }
    (digits_to_string(d.negative, digits, zeros), exponent)
}

/// `AsCanonicalBase1024Bytes` of an integral amount: digits and a power of 1024.
fn canonical_base1024(amount: &Amount) -> (String, i32) {
    let value: i128 = match amount {
        Amount::Int { value, scale } => {
            if *scale < 0 {
                i128::from(negative_scale_int64(*value, -i64::from(*scale)).0)
            } else {
                match positive_scale_int64(*value, *scale) {
                    Some(v) => i128::from(v),
                    None => {
                        Dec::from_i64(*value, -i64::from(*scale))
                            .to_nanos()
                            .unwrap_or(0)
                            / 1_000_000_000
                    }
                }
            }
        }
        Amount::Dec(d) => {
            let (r, _) = d.round_up(0);
            r.to_nanos().unwrap_or(0) / 1_000_000_000
        }
    };
    let mut v = value;
    let mut times = 0;
    while v != 0 && v % 1024 == 0 {
        v /= 1024;
        times += 1;
    }
    (v.to_string(), times)
}

/// Go's `removeInt64Factors`.
fn remove_int64_factors(value: i64, base: i64) -> (i64, i32) {
    let negative = value < 0;
    let mut result = if negative {
        value.wrapping_neg()
    } else {
        value
    };
    let mut times = 0i32;
    while result >= base && result % base == 0 {
        times = times.wrapping_add(1);
        result /= base;
    }
    (
        if negative {
            result.wrapping_neg()
        } else {
            result
        },
        times,
    )
}

/// Go's `int64MultiplyScale` family: `a × b`, `None` on overflow.
fn int64_multiply_scale(a: i64, b: i64) -> Option<i64> {
    if a == 0 || a == 1 {
        return Some(a.wrapping_mul(b));
    }
    if a == i64::MIN && b != 1 {
        return None;
    }
    let c = a.wrapping_mul(b);
    (c.wrapping_div(b) == a).then_some(c)
}

/// Go's `positiveScaleInt64`: `base × 10^scale`, `None` on overflow.
fn positive_scale_int64(base: i64, scale: i32) -> Option<i64> {
    match scale {
        0 => Some(base),
        1 => int64_multiply_scale(base, 10),
        2 => int64_multiply_scale(base, 100),
        3 => int64_multiply_scale(base, 1000),
        6 => int64_multiply_scale(base, 1_000_000),
        9 => int64_multiply_scale(base, 1_000_000_000),
        _ => {
            let mut value = base;
            for _ in 0..scale.max(0) {
                value = int64_multiply_scale(value, 10)?;
            }
            Some(value)
        }
    }
}

/// Go's `negativeScaleInt64`: `base / 10^scale` rounded away from zero, and exactness.
fn negative_scale_int64(base: i64, scale: i64) -> (i64, bool) {
    if scale == 0 {
        return (base, true);
    }
    let mut value = base;
    let mut fraction = false;
    for _ in 0..scale {
        if !fraction && value % 10 != 0 {
            fraction = true;
        }
        value /= 10;
        if value == 0 {
            if fraction {
                return (if base > 0 { 1 } else { -1 }, false);
            }
            return (0, true);
        }
    }
    if fraction {
        if base > 0 {
            value += 1;
        } else {
            value -= 1;
        }
    }
    (value, !fraction)
}

/// Go's `int64Multiply`.
fn int64_multiply(a: i64, b: i64) -> Option<i64> {
    if a == 0 || b == 0 || a == 1 || b == 1 {
        return Some(a.wrapping_mul(b));
    }
    if a == i64::MIN || b == i64::MIN {
        return None;
    }
    let c = a.wrapping_mul(b);
    (c.wrapping_div(b) == a).then_some(c)
}

struct Split<'a> {
    positive: bool,
    value: &'a str,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

const SUFFIX_CHARS: &[u8] = b"eEinumkKMGTP";

/// Go's `parseQuantityString`, byte for byte.
fn split_quantity(s: &str) -> Result<Split<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut positive = true;
    let mut pos = 0;
    if pos < end {
        match b[0] {
            b'-' => {
                positive = false;
                pos += 1;
            }
            b'+' => pos += 1,
            _ => {}
        }
    }
    // Leading zeros.
    loop {
        if pos >= end {
            return Ok(Split {
                positive,
                value: "0",
                num: "0",
                denom: "",
                suffix: "",
            });
        }
        if b[pos] == b'0' {
            pos += 1;
        } else {
            break;
        }
    }
    // Integer digits.
    let start = pos;
    let mut i = pos;
    while i < end && b[i].is_ascii_digit() {
        i += 1;
    }
    if i >= end {
        return Ok(Split {
            positive,
            value: &s[..end],
            num: &s[start..end],
            denom: "",
            suffix: "",
        });
    }
    let num = if i == start { "0" } else { &s[start..i] };
    pos = i;
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let dstart = pos;
        let mut j = pos;
        while j < end && b[j].is_ascii_digit() {
            j += 1;
        }
        if j >= end {
            return Ok(Split {
                positive,
                value: &s[..end],
                num,
                denom: &s[dstart..end],
                suffix: "",
            });
        }
        denom = &s[dstart..j];
        pos = j;
    }
    let value = &s[..pos];
    let suffix_start = pos;
    let mut i = pos;
    while i < end && SUFFIX_CHARS.contains(&b[i]) {
        i += 1;
    }
    if i >= end {
        return Ok(Split {
            positive,
            value,
            num,
            denom,
            suffix: &s[suffix_start..end],
        });
    }
    pos = i;
    if b[pos] == b'-' || b[pos] == b'+' {
        pos += 1;
    }
    let mut i = pos;
    while i < end && b[i].is_ascii_digit() {
        i += 1;
    }
    if i >= end {
        return Ok(Split {
            positive,
            value,
            num,
            denom,
            suffix: &s[suffix_start..end],
        });
    }
    Err(QuantityError::FormatWrong)
}

/// Go's `suffixer.interpret`: (base, exponent, format).
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, Format)> {
    let dec = |e| Some((10, e, Format::DecimalSI));
    let bin = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        _ => {
            let b = suffix.as_bytes();
            if b.len() > 1 && (b[0] == b'e' || b[0] == b'E') {
                let parsed = go_parse_int64(&suffix[1..])?;
                // Go: int32(parsed), a wrapping conversion.
                #[allow(clippy::cast_possible_truncation)]
                return Some((10, parsed as i32, Format::DecimalExponent));
            }
            None
        }
    }
}

/// `strconv.ParseInt(s, 10, 64)`.
fn go_parse_int64(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// Go's `ParseQuantity`.
fn parse_quantity(s: &str) -> Result<Quantity, QuantityError> {
    if s.is_empty() {
        return Err(QuantityError::FormatWrong);
    }
    if s == "0" {
        return Ok(Quantity {
            amount: Amount::Int { value: 0, scale: 0 },
            format: Format::DecimalSI,
            cached: Some(s.to_owned()),
        });
    }
    let sp = split_quantity(s)?;
    let (base, exponent, format) = interpret_suffix(sp.suffix).ok_or(QuantityError::Suffix)?;

    // The int64 fast path.
    let len_num = i32::try_from(sp.num.len()).unwrap_or(i32::MAX);
    let len_denom = i32::try_from(sp.denom.len()).unwrap_or(i32::MAX);
    let mut scale: i32 = 0;
    let mut mantissa: i64 = 1;
    let precision: i32 = match format {
        Format::DecimalExponent | Format::DecimalSI => {
            scale = exponent;
            18i32.wrapping_sub(len_num.wrapping_add(len_denom))
        }
        Format::BinarySI => {
            if exponent >= 0 && sp.denom.is_empty() {
                mantissa = 1i64 << exponent;
                // Go: 15 - len(num) - int32(float32(exponent)*3/10) - 1
                15i32
                    .wrapping_sub(len_num)
                    .wrapping_sub(exponent * 3 / 10)
                    .wrapping_sub(1)
            } else {
                -1
            }
        }
    };
    if precision >= 0 {
        scale = scale.wrapping_sub(len_denom);
        if scale >= -9 {
            let shifted = format!("{}{}", sp.num, sp.denom);
            let value: i64 = shifted.parse().map_err(|_| QuantityError::Numeric)?;
            if let Some(mut result) = int64_multiply(value, mantissa) {
                if !sp.positive {
                    result = result.wrapping_neg();
                }
                let canonical = match format {
                    Format::BinarySI => exponent % 10 == 0 && value & 0x07 != 0,
                    _ => scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0'),
                };
                return Ok(Quantity {
                    amount: Amount::Int {
                        value: result,
                        scale,
                    },
                    format,
                    cached: canonical.then(|| s.to_owned()),
                });
            }
        }
    }

    // The arbitrary-precision path.
    let mut amount = parse_decimal(sp.value).ok_or(QuantityError::Numeric)?;
    if base == 10 {
        // Go: amount.SetScale(amount.Scale() + Scale(exponent).infScale()) in int32.
        #[allow(clippy::cast_possible_truncation)]
        let inf_scale = (amount.scale as i32).wrapping_add(exponent.wrapping_neg());
        amount.scale = i64::from(inf_scale);
    } else {
        for _ in 0..exponent / 10 {
            mul_small(&mut amount.digits, 1024);
        }
        strip_leading_zeros(&mut amount.digits);
    }
    let negative = amount.negative && !amount.is_zero();
    amount.negative = false;
    if !amount.is_zero() {
        amount = amount.round_up(9).0;
    }
    let mut format = format;
    if format == Format::BinarySI {
        let max = Dec::from_i64(i64::MAX, 0);
        if amount.cmp_value(&max) == Ordering::Greater {
            amount = max;
        }
        let one = Dec::from_i64(1, 0);
        if amount.cmp_value(&one) == Ordering::Less && !amount.is_zero() {
            format = Format::DecimalSI;
        }
    }
    amount.negative = negative;
    Ok(Quantity {
        amount: Amount::Dec(amount),
        format,
        cached: None,
    })
}

/// `inf.Dec.SetString` for the `[+-]?digits[.digits]` prefixes `split_quantity` produces.
fn parse_decimal(s: &str) -> Option<Dec> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|c| c - b'0').collect();
    strip_leading_zeros(&mut digits);
    Some(Dec {
        negative,
        digits,
        scale: i64::try_from(frac.len()).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> String {
        match Quantity::parse(s) {
            Ok(q) => q.to_string(),
            Err(e) => format!("error: {e:?}"),
        }
    }

    #[test]
    fn canonical_forms() {
        let cases = [
            ("1000m", "1"),
            ("0.5", "500m"),
            ("1024Mi", "1Gi"),
            ("1Gi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("100M", "100M"),
            ("1e3", "1e3"),
            ("2048Ki", "2Mi"),
            ("0.1", "100m"),
            ("1000u", "1m"),
            ("5e2", "500"),
            ("5000e3", "5e6"),
            ("1.2e3", "1200"),
            ("+1", "+1"),
            ("01", "01"),
            ("-0", "0"),
            ("0.0", "0"),
            ("0Ki", "0"),
            ("1000E", "1"),
            ("8Ei", "9223372036854775807"),
            ("-16Ei", "-9223372036854775807"),
            ("1.5Pi", "1536Ti"),
            ("1.0001Ki", "1024102400u"),
            ("0.0001Ki", "102400u"),
            ("0.0000000001", "1n"),
            ("1.5n", "2n"),
            ("12345678901234567890", "12345678901234567890"),
            ("1.23456789012345678901", "1234567891n"),
            ("10e2147483647", "10e2147483647"),
            ("1.5e-2147483648", "150e2147483646"),
            ("1e+21", "1e+21"),
            ("18446744073709552000", "18446744073709552k"),
            ("1.5e-7", "150e-9"),
        ];
        for (input, want) in cases {
            assert_eq!(q(input), want, "{input}");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(Quantity::parse(""), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("1K"), Err(QuantityError::Suffix));
        assert_eq!(Quantity::parse("1KiB"), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("abc"), Err(QuantityError::FormatWrong));
        assert_eq!(Quantity::parse("1ee5"), Err(QuantityError::Suffix));
        assert_eq!(Quantity::parse("1e"), Err(QuantityError::Suffix));
        assert_eq!(
            Quantity::from_json_string("\t1Gi").map(|q| q.to_string()),
            Err(QuantityError::FormatWrong)
        );
        assert_eq!(
            Quantity::from_json_string("\u{a0}1Gi\u{3000}").map(|q| q.to_string()),
            Ok("1Gi".to_owned())
        );
    }

    fn quantity_strategy() -> impl Strategy<Value = String> {
        let suffix = prop_oneof![
            Just(String::new()),
            Just("n".to_owned()),
            Just("u".to_owned()),
            Just("m".to_owned()),
            Just("k".to_owned()),
            Just("M".to_owned()),
            Just("G".to_owned()),
            Just("T".to_owned()),
            Just("P".to_owned()),
            Just("E".to_owned()),
            Just("Ki".to_owned()),
            Just("Mi".to_owned()),
            Just("Gi".to_owned()),
            Just("Ti".to_owned()),
            Just("Pi".to_owned()),
            Just("Ei".to_owned()),
            (-40i32..40).prop_map(|e| format!("e{e}")),
        ];
        (
            "[+-]?",
            "[0-9]{0,25}",
            proptest::option::of("[0-9]{0,14}"),
            suffix,
        )
            .prop_map(|(sign, int, frac, suffix)| {
                let int = if int.is_empty() && frac.as_deref().unwrap_or("").is_empty() {
                    "0".to_owned()
                } else {
                    int
                };
                match frac {
                    Some(f) => format!("{sign}{int}.{f}{suffix}"),
                    None => format!("{sign}{int}{suffix}"),
                }
            })
    }

    proptest! {
        #[test]
        fn never_panics_on_any_string(s in "\\PC{0,30}") {
            let _ = Quantity::parse(&s).map(|q| q.to_string());
            let _ = Quantity::from_json_string(&s).map(|q| q.canonical());
        }

        #[test]
        fn canonical_form_is_idempotent_and_keeps_the_value(s in quantity_strategy()) {
            let Ok(parsed) = Quantity::parse(&s) else { return Ok(()); };
            let once = parsed.to_string();
            let reparsed = Quantity::parse(&once);
            prop_assert!(reparsed.is_ok(), "{s} -> {once} does not parse");
            let reparsed = reparsed.unwrap_or_else(|_| Quantity::zero());
            prop_assert_eq!(reparsed.to_string(), once.clone(), "not idempotent: {}", s);
            let canonical = parsed.canonical();
            prop_assert_eq!(Quantity::parse(&canonical).map(|q| q.canonical()), Ok(canonical.clone()));
            // The value survives (as Go parsed it: rounded up to one nano, binary values capped
            // at 2^63-1), except where Go drops a decimal-SI suffix it has no name for.
            if !parsed.value_eq(&reparsed) {
                let (_, exponent) = canonical_base10(&parsed.amount);
                prop_assert!(exponent > 18 && parsed.cached.is_none(), "{} -> {} changed value", s, once);
            }
        }
    }
}
