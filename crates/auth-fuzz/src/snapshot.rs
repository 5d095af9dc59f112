//! The `snapshot` target: restoring a session from whatever bytes the token store holds.

use auth_core::sim::Sim;
use auth_core::{AccessToken, Config, RefreshToken, RequestSpec, Snapshot, UnixTime};

/// Wall-clock times a decoded snapshot is restored at: the epoch, a realistic now, and the end
/// of time, so stored expiries land in the past, the future and everywhere saturating.
const WALL_CLOCKS: [u64; 3] = [0, 1_700_000_000_000, u64::MAX];

/// Step budget for the restored session to settle (three requests need a few dozen).
const SETTLE_STEPS: usize = 10_000;

/// The `snapshot` target. The bytes are the token store's content.
///
/// Panics unless: decoding never panics; a decoded snapshot has non-empty tokens, encodes
/// canonically (encode, decode, encode gives the same bytes) and decodes back equal; its
/// fingerprinted form (as in traces) reads back and writes the same; its `Debug` does not depend
/// on the secrets; and a session restored from it at each of [`WALL_CLOCKS`], then given an
/// authenticated, a public and an opted-out request, settles with the Monitor clean.
pub fn snapshot(data: &[u8]) {
    let snapshot = match Snapshot::decode(data) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            let _ = (error.to_string(), format!("{error:?}"));
            return;
        }
    };
    check_round_trip(&snapshot);
    for wall in WALL_CLOCKS {
        check_restore(&snapshot, wall);
    }
}

fn check_round_trip(snapshot: &Snapshot) {
    assert!(
        !snapshot.access_token.expose_secret().is_empty(),
        "empty access token"
    );
    if let Some(refresh) = &snapshot.refresh_token {
        assert!(!refresh.expose_secret().is_empty(), "empty refresh token");
    }
    let bytes = snapshot.encode();
    let again = match Snapshot::decode(&bytes) {
        Ok(again) => again,
        Err(error) => panic!("an encoded snapshot does not decode: {error}"),
    };
    assert_eq!(&again, snapshot, "decode(encode(s)) != s");
    assert_eq!(
        *again.encode(),
        *bytes,
        "encoding is not canonical: encode(decode(encode(s))) != encode(s)"
    );

    let fingerprinted = serde_json::to_string(snapshot).unwrap_or_default();
    match serde_json::from_str::<Snapshot>(&fingerprinted) {
        Ok(back) => assert_eq!(
            serde_json::to_string(&back).ok().as_deref(),
            Some(fingerprinted.as_str()),
            "the fingerprinted form does not round-trip"
        ),
        Err(error) => panic!("the fingerprinted form does not read back: {error}"),
    }

    let other = Snapshot {
        access_token: AccessToken::new("other-access"),
        refresh_token: snapshot
            .refresh_token
            .as_ref()
            .map(|_| RefreshToken::new("other-refresh")),
        expires_at: snapshot.expires_at,
    };
    assert_eq!(
        format!("{snapshot:?}"),
        format!("{other:?}"),
        "Debug of a snapshot depends on its secrets"
    );
}

fn check_restore(snapshot: &Snapshot, wall: u64) {
    let mut sim = Sim::new(Config::default());
    sim.wall_epoch = UnixTime::from_millis(wall);
    sim.store = Some(snapshot.clone());
    sim.restart();
    for spec in [
        RequestSpec::bearer(),
        RequestSpec::public(),
        RequestSpec::bearer().no_retry(),
    ] {
        sim.submit(spec);
    }
    let settled = sim.settle(SETTLE_STEPS);
    assert!(
        settled && sim.violations().is_empty(),
        "restored at wall clock {wall}: settled {settled}, violations {:?}\n{}",
        sim.violations(),
        sim.transcript()
    );
}
