//! The `www_authenticate` target: `WWW-Authenticate` values (RFC 7235 §4.1, RFC 6750 §3).

use auth_core::{parse_www_authenticate, Challenge, Verdict};

/// The `www_authenticate` target. The bytes are the header value (invalid UTF-8 replaced, as a
/// driver reading a lossy header would); a first `\n` also splits them into two values.
///
/// Panics unless: parsing and classifying never panic; only a 401 is ever
/// [`Verdict::Rejected`], and a 401 whose value does not parse is; parsed challenges have a
/// non-empty scheme and lowercase parameter names, and written back in canonical form they parse
/// to the same challenges and classify the same (parsing is stable); and when both halves around
/// the `\n` parse, their join with `", "` parses to both lists in order (the documented way to
/// read several headers).
pub fn www_authenticate(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_value(&text);
    if let Some((first, second)) = text.split_once('\n') {
        check_join(first, second);
    }
}

fn check_value(value: &str) {
    for status in [200, 401, 403] {
        let verdict = Verdict::classify(status, Some(value));
        if status != 401 {
            assert_eq!(verdict, Verdict::Accepted, "status {status}");
        }
    }
    let parsed = parse_www_authenticate(value);
    let challenges = match parsed {
        Ok(challenges) => challenges,
        Err(error) => {
            let _ = (error.to_string(), format!("{error:?}"));
            assert_eq!(
                Verdict::classify(401, Some(value)),
                Verdict::Rejected,
                "a 401 with an unparsable value must be rejected"
            );
            return;
        }
    };
    assert!(!challenges.is_empty(), "Ok with no challenge");
    for challenge in &challenges {
        assert!(!challenge.scheme().is_empty(), "empty scheme");
        assert!(
            challenge.token68().is_none() || challenge.params().is_empty(),
            "a challenge with both token68 and params"
        );
        for (name, _) in challenge.params() {
            assert!(!name.is_empty(), "empty parameter name");
            assert_eq!(
                name,
                &name.to_ascii_lowercase(),
                "parameter name not lowercased"
            );
        }
        let _ = challenge.bearer();
    }
    let written = write(&challenges);
    match parse_www_authenticate(&written) {
        Ok(again) => assert_eq!(
            again, challenges,
            "parsing is not stable: {value:?} was written back as {written:?}"
        ),
        Err(error) => panic!("{value:?} written back as {written:?} does not parse: {error}"),
    }
    assert_eq!(
        Verdict::classify(401, Some(value)),
        Verdict::classify(401, Some(&written)),
        "{value:?} and its canonical form {written:?} classify differently"
    );
}

fn check_join(first: &str, second: &str) {
    let (Ok(mut expected), Ok(tail)) = (
        parse_www_authenticate(first),
        parse_www_authenticate(second),
    ) else {
        return;
    };
    expected.extend(tail);
    let joined = format!("{first}, {second}");
    assert_eq!(
        parse_www_authenticate(&joined).ok(),
        Some(expected),
        "{first:?} and {second:?} parse alone but not joined as {joined:?}"
    );
}

/// The canonical form: `scheme`, then one space and the token68 or the parameters, each value
/// as a quoted-string; challenges separated by `", "`.
fn write(challenges: &[Challenge]) -> String {
    let mut out = String::new();
    for (index, challenge) in challenges.iter().enumerate() {
        if index > 0 {
            out.push_str(", ");
        }
        out.push_str(challenge.scheme());
        if let Some(token68) = challenge.token68() {
            out.push(' ');
            out.push_str(token68);
        }
        for (index, (name, value)) in challenge.params().iter().enumerate() {
            out.push_str(if index == 0 { " " } else { ", " });
            out.push_str(name);
            out.push_str("=\"");
            for c in value.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
    }
    out
}
