//! Just enough DER to read a certificate's `notAfter` (RFC 5280 §4.1.2.5), for the
//! "certificate expires soon" warning. The certificate has already been verified by the TLS
//! stack; this reader only has to be safe on any bytes (bounds-checked, no recursion, no
//! panics), not complete.

/// Why `notAfter` could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("the certificate is not well-formed DER")]
    Der,
    #[error("the certificate's validity time is not a valid UTCTime/GeneralizedTime")]
    Time,
}

/// One DER element: tag and contents; `rest` follows it.
struct Tlv<'a> {
    tag: u8,
    body: &'a [u8],
    rest: &'a [u8],
}

fn tlv(input: &[u8]) -> Result<Tlv<'_>, CertError> {
    let (&tag, after_tag) = input.split_first().ok_or(CertError::Der)?;
    let (&first, mut after_len) = after_tag.split_first().ok_or(CertError::Der)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        // Long form: 1..=4 length bytes (a certificate is never 4 GiB).
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || after_len.len() < n {
            return Err(CertError::Der);
        }
        let (bytes, rest) = after_len.split_at(n);
        after_len = rest;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if after_len.len() < len {
        return Err(CertError::Der);
    }
    let (body, rest) = after_len.split_at(len);
    Ok(Tlv { tag, body, rest })
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// `notAfter` of a DER certificate, as Unix seconds.
pub fn not_after(der: &[u8]) -> Result<i64, CertError> {
    let cert = tlv(der)?;
    if cert.tag != SEQUENCE {
        return Err(CertError::Der);
    }
    let tbs = tlv(cert.body)?;
    if tbs.tag != SEQUENCE {
        return Err(CertError::Der);
    }
    let mut cur = tlv(tbs.body)?;
    if cur.tag == VERSION {
        cur = tlv(cur.rest)?;
    }
    if cur.tag != INTEGER {
        return Err(CertError::Der);
    }
    let signature = tlv(cur.rest)?;
    let issuer = tlv(signature.rest)?;
    let validity = tlv(issuer.rest)?;
    if signature.tag != SEQUENCE || issuer.tag != SEQUENCE || validity.tag != SEQUENCE {
        return Err(CertError::Der);
    }
    let not_before = tlv(validity.body)?;
    let not_after = tlv(not_before.rest)?;
    parse_time(not_after.tag, not_after.body)
}

/// RFC 5280 §4.1.2.5.1/.2: `YYMMDDHHMMSSZ` (years 1950–2049) or `YYYYMMDDHHMMSSZ`.
fn parse_time(tag: u8, body: &[u8]) -> Result<i64, CertError> {
    let s = std::str::from_utf8(body).map_err(|_| CertError::Time)?;
    let digits = s.strip_suffix('Z').ok_or(CertError::Time)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CertError::Time);
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, CertError> {
        digits
            .get(r)
            .and_then(|d| d.parse::<i64>().ok())
            .ok_or(CertError::Time)
    };
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy = num(0..2)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        (GENERALIZED_TIME, 14) => (num(0..4)?, 4),
        _ => return Err(CertError::Time),
    };
    let month = num(rest..rest + 2)?;
    let day = num(rest + 2..rest + 4)?;
    let hour = num(rest + 4..rest + 6)?;
    let minute = num(rest + 6..rest + 8)?;
    let second = num(rest + 8..rest + 10)?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(CertError::Time);
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(
            parse_time(UTC_TIME, b"491231235959Z"),
            Ok(2_524_607_999) // 2049-12-31T23:59:59Z
        );
        assert_eq!(
            parse_time(GENERALIZED_TIME, b"20500101000000Z"),
            Ok(2_524_608_000)
        );
        assert_eq!(parse_time(UTC_TIME, b"700101000000Z"), Ok(0));
    }

    /// Hostile or odd bytes: errors, never panics.
    #[test]
    fn hostile_der_is_an_error() {
        for der in [
            &b""[..],
            b"\x30",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x30\x80",
            b"\x30\x85\x01\x01\x01\x01\x01",
            b"\x04\x00",
            b"\x30\x02\x30\x00",
            b"\x30\x03\x30\x01\x02",
        ] {
            assert_eq!(not_after(der), Err(CertError::Der), "{der:?}");
        }
        for (tag, t) in [
            (UTC_TIME, &b"491231235959"[..]),
            (UTC_TIME, b"4912312359Z"),
            (UTC_TIME, b"49123123595+Z"),
            (UTC_TIME, b"491331235959Z"),
            (GENERALIZED_TIME, b"491231235959Z"),
            (0x04, b"20500101000000Z"),
            (UTC_TIME, b"\xff\xff"),
        ] {
            assert_eq!(parse_time(tag, t), Err(CertError::Time));
        }
    }
}
