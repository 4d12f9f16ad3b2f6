//! JSON string escaping, byte for byte as polars' `write_ndjson` (and serde_json) write it:
//! `"` and `\` escaped, control characters as `\b \t \n \f \r` or `\u00XX`, the rest as is.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// 0: written as is; otherwise the escape's kind.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = b'u';
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Appends `value` (valid UTF-8) to `out` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, value: &[u8]) {
    out.reserve(value.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &byte) in value.iter().enumerate() {
        let kind = ESCAPE[byte as usize];
        if kind == 0 {
            continue;
        }
        out.extend_from_slice(&value[start..i]);
        if kind == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(byte >> 4) as usize]);
            out.push(HEX[(byte & 0xf) as usize]);
        } else {
            out.push(b'\\');
            out.push(kind);
        }
        start = i + 1;
    }
    out.extend_from_slice(&value[start..]);
    out.push(b'"');
}

/// Per column, what precedes its value in a JSON object: `{"name":` for the first,
/// `,"name":` for the others.
pub fn key_prefixes(names: &[String]) -> Vec<Vec<u8>> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut prefix = vec![if i == 0 { b'{' } else { b',' }];
            write_str(&mut prefix, name.as_bytes());
            prefix.push(b':');
            prefix
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_polars_does() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\n\t\u{1}\u{1f}\u{7f}é/".as_bytes());
        assert_eq!(
            out,
            "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\u{7f}é/\"".as_bytes()
        );
    }
}
