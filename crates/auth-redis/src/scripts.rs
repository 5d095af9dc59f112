//! The five operations as Lua scripts, and the decoding of what they answer.
//!
//! Each script runs atomically in Redis (no other command runs between its steps), so an
//! operation is one step for every process sharing the session. `KEYS[1]` is the record (a hash:
//! `version`, `content`, `spent`, `tokens`) and `KEYS[2]` the lease (a string holding the owner,
//! expiring by itself after its ttl). A record the scripts never wrote reads as version `0`,
//! `empty`, not spent.
//!
//! Versions travel as canonical decimal strings and are compared as strings, so every `u64` is
//! exact (Lua numbers are doubles); the one increment done in Lua (the logout's) is decimal
//! arithmetic on that string, wrapping at `u64::MAX` as [`auth_core::StoreVersion::next`] does.
//! Every answer that carries the record has it as four strings with absent fields filled in, so
//! RESP2 and RESP3 clients decode the same reply.

use auth_core::{Snapshot, SnapshotError, StoreVersion};
use auth_store::shared::{Record, RecordContent};
use zeroize::Zeroizing;

/// Reads the record as `{version, content, spent, tokens}` with defaults for absent fields.
/// Shared by the scripts that answer with the record.
const READ_RECORD: &str = r#"
local function read_record(key)
  local r = redis.call('HMGET', key, 'version', 'content', 'spent', 'tokens')
  return {r[1] or '0', r[2] or 'empty', r[3] or '0', r[4] or ''}
end
"#;

/// `read()`: the record as it is.
pub(crate) const READ: &str = r#"
return read_record(KEYS[1])
"#;

/// `acquire(owner = ARGV[1], ttl_ms = ARGV[2])`: if no lease exists (Redis drops it at its
/// ttl), take it and set the spent mark; answer `granted` with the record from before the mark,
/// else `busy` with the record as it is.
pub(crate) const ACQUIRE: &str = r#"
local before = read_record(KEYS[1])
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'busy', before[1], before[2], before[3], before[4]}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'version', '0', 'content', 'empty', 'spent', '1')
else
  redis.call('HSET', KEYS[1], 'spent', '1')
end
return {'granted', before[1], before[2], before[3], before[4]}
"#;

/// `publish(expected = ARGV[1], next = ARGV[2], tokens = ARGV[3])`: compare-and-swap on the
/// version; the lease is not looked at. Answers `written`, or `conflict` with the record.
pub(crate) const PUBLISH: &str = r#"
local current = read_record(KEYS[1])
if current[1] ~= ARGV[1] then
  return {'conflict', current[1], current[2], current[3], current[4]}
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'content', 'tokens', 'spent', '0',
  'tokens', ARGV[3])
return {'written'}
"#;

/// `release(owner = ARGV[1], version = ARGV[2], spent = ARGV[3])`: compare-and-delete of the
/// lease; only then, if the holder did not spend the token and the version is unchanged, the
/// mark is cleared (on a record that exists: a lost record has no mark to clear).
pub(crate) const RELEASE: &str = r#"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[2])
if ARGV[3] == '0' and redis.call('EXISTS', KEYS[1]) == 1
    and (redis.call('HGET', KEYS[1], 'version') or '0') == ARGV[2] then
  redis.call('HSET', KEYS[1], 'spent', '0')
end
return 1
"#;

/// `logout()`: the tombstone as version + 1 with the mark clear and the tokens deleted, a
/// tombstone over a tombstone included (a login under way loses its compare-and-swap). Answers
/// with the record. A
/// version that is not a canonical decimal `u64` is an error reply (`SEAMLESS_CORRUPT`): the
/// script never guesses a version.
pub(crate) const LOGOUT: &str = r#"
local current = read_record(KEYS[1])
local v = current[1]
if not string.match(v, '^%d+$') or #v > 20 or (#v > 1 and string.sub(v, 1, 1) == '0')
    or (#v == 20 and v > '18446744073709551615') then
  return redis.error_reply('SEAMLESS_CORRUPT version')
end
local bumped
if v == '18446744073709551615' then
  bumped = '0'
else
  bumped = ''
  local carry = 1
  for i = #v, 1, -1 do
    local d = string.byte(v, i) - 48 + carry
    if d == 10 then d = 0; carry = 1 else carry = 0 end
    bumped = string.char(48 + d) .. bumped
  end
  if carry == 1 then bumped = '1' .. bumped end
end
redis.call('HSET', KEYS[1], 'version', bumped, 'content', 'logged_out', 'spent', '0')
redis.call('HDEL', KEYS[1], 'tokens')
return {bumped, 'logged_out', '0', ''}
"#;

/// The error code a script answers for a record it cannot take a version from.
pub(crate) const CORRUPT_CODE: &str = "SEAMLESS_CORRUPT";

/// A script: its source with the shared helpers, and the SHA1 `EVALSHA` names it by.
#[derive(Debug)]
pub(crate) struct LuaScript {
    /// The full source sent by `EVAL` when the server does not know the hash.
    pub(crate) source: String,
    /// Its SHA1, for `EVALSHA`.
    pub(crate) hash: String,
}

impl LuaScript {
    /// `body` with the helpers it may call.
    pub(crate) fn new(body: &str) -> LuaScript {
        let source = format!("{READ_RECORD}{body}");
        let hash = redis::Script::new(&source).get_hash().to_owned();
        LuaScript { source, hash }
    }
}

/// The five scripts, hashed once per store.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) read: LuaScript,
    pub(crate) acquire: LuaScript,
    pub(crate) publish: LuaScript,
    pub(crate) release: LuaScript,
    pub(crate) logout: LuaScript,
}

impl Scripts {
    pub(crate) fn new() -> Scripts {
        Scripts {
            read: LuaScript::new(READ),
            acquire: LuaScript::new(ACQUIRE),
            publish: LuaScript::new(PUBLISH),
            release: LuaScript::new(RELEASE),
            logout: LuaScript::new(LOGOUT),
        }
    }
}

/// A version as the scripts write and compare it: canonical decimal.
pub(crate) fn version_arg(version: StoreVersion) -> String {
    version.0.to_string()
}

/// An answer the scripts cannot have given (another writer, or a server that is not Redis).
/// Never built from the reply's bytes.
#[derive(Debug)]
pub(crate) struct UnexpectedReply;

/// Why a reply did not decode: its shape, or the record it carries.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Not the shape the script returns.
    Shape(UnexpectedReply),
    /// The record is not one this release reads.
    Record(SnapshotError),
}

impl From<SnapshotError> for DecodeError {
    fn from(error: SnapshotError) -> Self {
        DecodeError::Record(error)
    }
}

/// The first element of a tagged answer (`granted`, `busy`, `written`, `conflict`) and the rest.
pub(crate) fn split_tag(reply: redis::Value) -> Result<(String, Vec<redis::Value>), DecodeError> {
    let mut items = array(reply)?;
    if items.is_empty() {
        return Err(DecodeError::Shape(UnexpectedReply));
    }
    let tag = bytes(items.remove(0))?;
    let tag = String::from_utf8(tag).map_err(|_| DecodeError::Shape(UnexpectedReply))?;
    Ok((tag, items))
}

/// Decodes the four fields of a record answer.
pub(crate) fn decode_record(items: Vec<redis::Value>) -> Result<Record, DecodeError> {
    let mut fields = items.into_iter();
    let (Some(version), Some(content), Some(spent), Some(tokens), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(DecodeError::Shape(UnexpectedReply));
    };
    let version = parse_version(&bytes(version)?)?;
    let spent = match bytes(spent)?.as_slice() {
        b"0" => false,
        b"1" => true,
        _ => {
            return Err(
                SnapshotError::Corrupt("the shared record's spent mark is not 0 or 1").into(),
            )
        }
    };
    // The tokens are wiped from this copy once decoded (the reply's own buffer is moved here).
    let tokens = Zeroizing::new(bytes(tokens)?);
    let content = match bytes(content)?.as_slice() {
        b"empty" => RecordContent::Empty,
        b"logged_out" => RecordContent::LoggedOut,
        b"tokens" => RecordContent::Tokens(Snapshot::decode(&tokens)?),
        _ => {
            return Err(SnapshotError::Corrupt(
                "the shared record's content is not one this release knows",
            )
            .into())
        }
    };
    Ok(Record {
        version,
        content,
        spent,
    })
}

/// A canonical decimal `u64` (what the scripts write), nothing else.
fn parse_version(text: &[u8]) -> Result<StoreVersion, SnapshotError> {
    let corrupt = SnapshotError::Corrupt("the shared record's version is not a version number");
    let canonical = !text.is_empty()
        && text.iter().all(u8::is_ascii_digit)
        && (text.len() == 1 || text[0] != b'0');
    if !canonical {
        return Err(corrupt);
    }
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse().ok())
        .map(StoreVersion)
        .ok_or(corrupt)
}

fn array(reply: redis::Value) -> Result<Vec<redis::Value>, DecodeError> {
    match reply {
        redis::Value::Array(items) => Ok(items),
        _ => Err(DecodeError::Shape(UnexpectedReply)),
    }
}

fn bytes(value: redis::Value) -> Result<Vec<u8>, DecodeError> {
    match value {
        redis::Value::BulkString(bytes) => Ok(bytes),
        redis::Value::SimpleString(text) => Ok(text.into_bytes()),
        _ => Err(DecodeError::Shape(UnexpectedReply)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_canonical_decimal_u64s() {
        assert_eq!(parse_version(b"0").ok(), Some(StoreVersion(0)));
        assert_eq!(parse_version(b"42").ok(), Some(StoreVersion(42)));
        assert_eq!(
            parse_version(b"18446744073709551615").ok(),
            Some(StoreVersion(u64::MAX))
        );
        for bad in [
            &b""[..],
            b"007",
            b"+1",
            b"-1",
            b"1.0",
            b" 1",
            b"18446744073709551616",
        ] {
            assert!(parse_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_record_with_an_unknown_field_value_is_unreadable() {
        let record = |version: &str, content: &str, spent: &str| {
            decode_record(
                [version, content, spent, ""]
                    .map(|text| redis::Value::BulkString(text.as_bytes().to_vec()))
                    .to_vec(),
            )
        };
        assert!(record("3", "logged_out", "0").is_ok());
        assert!(matches!(
            record("3", "tombstone", "0"),
            Err(DecodeError::Record(_))
        ));
        assert!(matches!(
            record("3", "empty", "yes"),
            Err(DecodeError::Record(_))
        ));
        assert!(matches!(
            record("3", "tokens", "0"),
            Err(DecodeError::Record(SnapshotError::Empty))
        ));
    }
}
