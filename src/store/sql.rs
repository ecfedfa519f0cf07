//! The SQL both stores run, written once. Parameters are `$N`, which sqlx's SQLite driver binds
//! by number like PostgreSQL. What differs stays with its store: PostgreSQL's row locks
//! (`FOR UPDATE`, `FOR SHARE`) and collations, and how each runs its writes (SQLite's one
//! writer task, PostgreSQL's transactions and retries).
//!
//! The statements that bind several values come with a macro that builds the query and binds
//! them, so the order of the binds is written once too; each store only executes it.

/// The client columns, in the order of `ClientRow`.
macro_rules! client_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, scopes, secret_hash, previous_secret_hash, previous_secret_expires_at, ",
            "otp_seed_sealed, otp_last_step, public_key, public_key_alg, disabled, created_at, last_used_at ",
            "FROM clients ",
            $tail
        )
    };
}

/// The long-term token columns with the owner's `disabled` flag, in the order of `LongTokenRow`.
macro_rules! long_select {
    ($tail:literal) => {
        concat!(
            "SELECT t.id, t.client_id, t.scopes, t.name, t.issued_at, t.expires_at, t.revoked_at, t.parent_id, ",
            "t.origin, t.last_used_at, c.disabled AS client_disabled FROM long_tokens t JOIN clients c ON c.id = t.client_id ",
            $tail
        )
    };
}

pub(super) const PING: &str = "SELECT 1";

/// A last use, never moved backwards (two instances may write the same token's).
pub(super) const TOKEN_LAST_USED: &str =
    "UPDATE long_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)";
pub(super) const CLIENT_LAST_USED: &str =
    "UPDATE clients SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)";

pub(super) const GET_CLIENT: &str = client_select!("WHERE id = $1");
pub(super) const LIST_CLIENTS: &str = client_select!("ORDER BY created_at, id");
pub(super) const SET_CLIENT_DISABLED: &str = "UPDATE clients SET disabled = $1 WHERE id = $2";
pub(super) const SET_CLIENT_OTP: &str = "UPDATE clients SET otp_seed_sealed = $1, otp_last_step = 0 WHERE id = $2";
/// The right-hand sides read the row as it was, so the old hash moves over.
pub(super) const ROTATE_CLIENT_SECRET: &str = "UPDATE clients SET previous_secret_hash = \
     CASE WHEN CAST($1 AS BIGINT) IS NULL THEN NULL ELSE secret_hash END, \
     previous_secret_expires_at = $1, secret_hash = $2 WHERE id = $3";
pub(super) const SET_CLIENT_PUBLIC_KEY: &str =
    "UPDATE clients SET public_key = $1, public_key_alg = $2 WHERE id = $3 AND ($4 OR public_key IS NULL)";

/// RFC 6238 §5.2: a step is accepted once; the row count is the answer.
pub(super) const CONSUME_OTP_STEP: &str = "UPDATE clients SET otp_last_step = $1 WHERE id = $2 AND otp_last_step < $1";
pub(super) const CONSUME_JTI: &str =
    "INSERT INTO used_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

pub(super) const FIND_LONG_BY_HASH: &str = long_select!("WHERE t.token_hash = $1");
pub(super) const GET_LONG: &str = long_select!("WHERE t.id = $1");
pub(super) const LIST_LONG: &str = long_select!("ORDER BY t.issued_at, t.id");
pub(super) const LIST_LONG_OF_CLIENT: &str = long_select!("WHERE t.client_id = $1 ORDER BY t.issued_at, t.id");
/// Tokens whose end is after `$1`: the selection a listing starts from (the domain decides
/// each one's status).
pub(super) const LIST_CURRENT_LONG: &str =
    long_select!("WHERE t.expires_at > $1 AND (t.revoked_at IS NULL OR t.revoked_at > $1) ORDER BY t.issued_at, t.id");
/// Tokens valid at `$1` (the domain decides each one's status) that expire by `$2` and were
/// issued for longer than `$3`.
pub(super) const LIST_EXPIRING_LONG: &str = long_select!(
    "WHERE t.expires_at > $1 AND t.expires_at <= $2 AND t.expires_at - t.issued_at > $3 \
     AND (t.revoked_at IS NULL OR t.revoked_at > $1) ORDER BY t.expires_at, t.id"
);
/// The same, within the lead time `$2`, less those already warned of at that lead time.
pub(super) const LIST_UNWARNED_EXPIRING_LONG: &str = long_select!(
    "WHERE t.expires_at > $1 AND t.expires_at <= $1 + $2 AND t.expires_at - t.issued_at > $2 \
     AND (t.revoked_at IS NULL OR t.revoked_at > $1) \
     AND NOT EXISTS (SELECT 1 FROM expiry_warnings w WHERE w.token_id = t.id AND w.lead_secs = $2) \
     ORDER BY t.expires_at, t.id"
);
/// An expiry warning, given once; the row count says whether this call gave it.
pub(super) const WARN_EXPIRING: &str =
    "INSERT INTO expiry_warnings (token_id, lead_secs) VALUES ($1, $2) ON CONFLICT DO NOTHING";
pub(super) const LIST_CURRENT_LONG_OF_CLIENT: &str = long_select!(
    "WHERE t.client_id = $2 AND t.expires_at > $1 AND (t.revoked_at IS NULL OR t.revoked_at > $1) \
     ORDER BY t.issued_at, t.id"
);
/// The parent a child is inserted under, if live at `$3` (PostgreSQL adds a share lock).
pub(super) const LIVE_PARENT: &str = "SELECT 1 FROM long_tokens WHERE id = $1 AND client_id = $2 AND expires_at > $3 \
     AND (revoked_at IS NULL OR revoked_at > $3)";
/// A rotation's target: live at `$5`, of the same client, not rotated before; it ends at `$1`
/// (or earlier, if it already would).
pub(super) const ROTATE_TARGET: &str = "UPDATE long_tokens SET \
     revoked_at = CASE WHEN revoked_at IS NULL OR revoked_at > $1 THEN $1 ELSE revoked_at END, replaced_by = $2 \
     WHERE id = $3 AND client_id = $4 AND expires_at > $5 AND (revoked_at IS NULL OR revoked_at > $5) \
     AND replaced_by IS NULL";

pub(super) const REVOKE_SHORT: &str =
    "INSERT INTO revoked_short_tokens (id, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING";
pub(super) const IS_SHORT_REVOKED: &str = "SELECT 1 FROM revoked_short_tokens WHERE id = $1";

pub(super) const LIST_SIGNING_KEYS: &str =
    "SELECT kid, alg, key_sealed, created_at, activates_at, retired_at FROM signing_keys ORDER BY created_at, kid";
/// Every key of the algorithm still signing at `$1` retires then.
pub(super) const RETIRE_SIGNING_KEYS: &str =
    "UPDATE signing_keys SET retired_at = $1 WHERE alg = $2 AND (retired_at IS NULL OR retired_at > $1)";

pub(super) const LIST_AUDIT: &str = "SELECT id, at, event, outcome, client_id, token_id, source, mechanism, reason, detail \
     FROM audit_events WHERE id > $1 AND (CAST($2 AS TEXT) IS NULL OR client_id = $2) \
     AND (CAST($3 AS BIGINT) IS NULL OR at >= $3) ORDER BY id LIMIT $4";

/// A page of the trail, newest first, before a cursor (`$1`, an id), with optional filters.
pub(super) const LIST_AUDIT_PAGE: &str = "SELECT id, at, event, outcome, client_id, token_id, source, mechanism, reason, detail \
     FROM audit_events WHERE (CAST($1 AS BIGINT) IS NULL OR id < $1) AND (CAST($2 AS TEXT) IS NULL OR client_id = $2) \
     AND (CAST($3 AS TEXT) IS NULL OR event = $3) AND (CAST($4 AS TEXT) IS NULL OR outcome = $4) \
     AND (CAST($5 AS BIGINT) IS NULL OR at >= $5) ORDER BY id DESC LIMIT $6";

/// Events of the named kinds since `$1`, counted per bucket of `$2` milliseconds.
pub(super) const COUNT_AUDIT: &str = "SELECT at / $2 AS bucket, event, COUNT(*) AS n FROM audit_events \
     WHERE at >= $1 AND event IN ('long_token.issued', 'long_token.rotated', 'short_token.issued', 'auth.failed') \
     GROUP BY at / $2, event";

/// The events that stand for a count (short-term issuances per client, summarised failures)
/// since `$1`, at most `$2`.
pub(super) const LIST_AUDIT_TALLIES: &str = "SELECT id, at, event, outcome, client_id, token_id, source, mechanism, reason, detail \
     FROM audit_events WHERE at >= $1 AND event IN ('short_tokens.issued', 'auth.failures_summarized') \
     ORDER BY id LIMIT $2";

/// Bounded batches keep each statement short, so requests never wait long behind the cleanup.
pub(super) const PURGE_AUDIT: &str =
    "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < $1 ORDER BY id LIMIT $2)";
pub(super) const PURGE_LONG: &str =
    "DELETE FROM long_tokens WHERE id IN (SELECT id FROM long_tokens WHERE expires_at < $1 LIMIT $2)";
pub(super) const PURGE_SHORT: &str =
    "DELETE FROM revoked_short_tokens WHERE id IN (SELECT id FROM revoked_short_tokens WHERE expires_at < $1 LIMIT $2)";
pub(super) const PURGE_JTIS: &str = "DELETE FROM used_assertions WHERE (client_id, jti) IN \
     (SELECT client_id, jti FROM used_assertions WHERE expires_at < $1 LIMIT $2)";
pub(super) const PURGE_LIMITS: &str =
    "DELETE FROM auth_limits WHERE key IN (SELECT key FROM auth_limits WHERE expires_at < $1 LIMIT $2)";

/// A failure counter's row, created empty if missing, so that it can be locked.
pub(super) const ENSURE_LIMIT_ROW: &str = "INSERT INTO auth_limits (key, recent, locked_until, changed_at, expires_at) \
     VALUES ($1, '', 0, 0, 0) ON CONFLICT (key) DO NOTHING";
/// A failure counter (PostgreSQL adds `FOR UPDATE`).
pub(super) const GET_LIMIT_ROW: &str =
    "SELECT key, recent, locked_until, changed_at, expires_at FROM auth_limits WHERE key = $1";
pub(super) const CHANGED_LOCKS: &str = "SELECT key, locked_until FROM auth_limits WHERE changed_at >= $1";
/// An operator's unlock: the row stays (with an empty past) long enough for every instance to
/// see it.
pub(super) const RESET_LIMIT: &str = "UPDATE auth_limits SET recent = '', locked_until = 0, changed_at = $2, \
     expires_at = CASE WHEN expires_at > $3 THEN expires_at ELSE $3 END WHERE key = $1";

/// `INSERT` of a client, bound.
macro_rules! insert_client {
    ($c:expr) => {
        sqlx::query(
            "INSERT INTO clients (id, name, scopes, secret_hash, otp_seed_sealed, otp_last_step, public_key, \
             public_key_alg, disabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind($c.id.as_str())
        .bind(&$c.name)
        .bind($c.scopes.to_space_separated())
        .bind(&$c.secret_hash)
        .bind(&$c.otp_seed_sealed)
        .bind($c.otp_last_step)
        .bind(&$c.public_key)
        .bind(&$c.public_key_alg)
        .bind($c.disabled)
        .bind($c.created_at)
    };
}

/// `INSERT` of a long-term token, bound.
macro_rules! insert_long {
    ($t:expr) => {
        sqlx::query(
            "INSERT INTO long_tokens (id, client_id, token_hash, scopes, name, issued_at, expires_at, parent_id, \
             origin) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind($t.id.to_string())
        .bind($t.client_id.as_str())
        .bind(&$t.token_hash[..])
        .bind($t.scopes.to_space_separated())
        .bind(&$t.name)
        .bind($t.issued_at)
        .bind($t.expires_at)
        .bind($t.parent.map(|p| p.to_string()))
        .bind($t.origin.encode())
    };
}

/// A rotation's conditional update (`ROTATE_TARGET`), bound.
macro_rules! rotate_target {
    ($new:expr, $rotation:expr, $now:expr) => {
        sqlx::query($crate::store::sql::ROTATE_TARGET)
            .bind($rotation.revoke_at)
            .bind($new.id.to_string())
            .bind($rotation.old.to_string())
            .bind($new.client_id.as_str())
            .bind($now)
    };
}

/// `INSERT` of a signing key, bound.
macro_rules! insert_signing_key {
    ($k:expr) => {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, key_sealed, created_at, activates_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&$k.kid)
        .bind(&$k.alg)
        .bind(&$k.key_sealed)
        .bind($k.created_at)
        .bind($k.activates_at)
        .bind($k.retired_at)
    };
}

/// `INSERT` of one audit event, bound.
macro_rules! insert_audit {
    ($e:expr) => {
        sqlx::query(
            "INSERT INTO audit_events (at, event, outcome, client_id, token_id, source, mechanism, reason, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind($e.at)
        .bind(&$e.event)
        .bind(&$e.outcome)
        .bind(&$e.client_id)
        .bind(&$e.token_id)
        .bind(&$e.source)
        .bind(&$e.mechanism)
        .bind(&$e.reason)
        .bind(&$e.detail)
    };
}

/// `UPDATE` of a failure counter's row (`LimitRow`), bound.
macro_rules! update_limit_row {
    ($row:expr) => {
        sqlx::query(
            "UPDATE auth_limits SET recent = $2, locked_until = $3, changed_at = $4, expires_at = $5 WHERE key = $1",
        )
        .bind(&$row.key)
        .bind(&$row.recent)
        .bind($row.locked_until)
        .bind($row.changed_at)
        .bind($row.expires_at)
    };
}

pub(super) const LIST_ISSUERS: &str =
    "SELECT name, issuer, jwks_uri, discovery, jwks, created_at FROM trusted_issuers ORDER BY name";
pub(super) const REMOVE_ISSUER: &str = "DELETE FROM trusted_issuers WHERE name = $1";
/// The rule columns, in the order of `RuleRow`.
macro_rules! rule_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, client_id, issuer_name, audience, matches, max_ttl_days, scopes FROM federation_rules ",
            $tail
        )
    };
}
pub(super) const LIST_RULES: &str = rule_select!("ORDER BY id");
pub(super) const LIST_RULES_OF_CLIENT: &str = rule_select!("WHERE client_id = $1 ORDER BY id");
pub(super) const REMOVE_RULE: &str = "DELETE FROM federation_rules WHERE id = $1";

/// Binds a [`crate::domain::federation::TrustedIssuer`]; nothing is written if its name or its
/// `iss` is taken.
macro_rules! insert_issuer {
    ($i:expr) => {{
        let (jwks_uri, discovery, jwks) = match &$i.keys {
            $crate::domain::federation::IssuerKeys::JwksUri(u) => (Some(u.as_str()), false, None),
            $crate::domain::federation::IssuerKeys::Discovery => (None, true, None),
            $crate::domain::federation::IssuerKeys::Jwks(j) => (None, false, Some(j.as_str())),
        };
        sqlx::query(
            "INSERT INTO trusted_issuers (name, issuer, jwks_uri, discovery, jwks, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind($i.name.as_str())
        .bind(&$i.issuer)
        .bind(jwks_uri)
        .bind(discovery)
        .bind(jwks)
        .bind($i.created_at)
    }};
}

/// Binds a [`crate::domain::federation::FederationRule`]: its conditions as a JSON array of
/// `[path, pattern]` pairs.
macro_rules! insert_rule {
    ($r:expr, $created_at:expr) => {{
        let matches: Vec<[&str; 2]> = $r.matches.iter().map(|m| [m.path.as_str(), m.pattern.as_str()]).collect();
        sqlx::query(
            "INSERT INTO federation_rules (id, client_id, issuer_name, audience, matches, max_ttl_days, scopes, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&$r.id)
        .bind($r.client_id.as_str())
        .bind($r.issuer.as_str())
        .bind(&$r.audience)
        .bind(serde_json::json!(matches).to_string())
        .bind($r.max_ttl_days)
        .bind($r.scopes.as_ref().map(|s| s.to_space_separated()))
        .bind($created_at)
    }};
}

/// Records an audit event and, in the same transaction, its webhook message for every
/// receiver subscribed to it (the outbox). Evaluates to `Result<(), sqlx::Error>`.
/// With a third argument, `|event_type: &str| -> bool`, the fan-out runs only for the types it
/// says some receiver may subscribe to (the SQLite writer knows them exactly, see there).
macro_rules! record_event {
    ($conn:expr, $e:expr) => {
        sql::record_event!($conn, $e, |_: &str| true)
    };
    ($conn:expr, $e:expr, $subscribed:expr) => {
        async {
            let e: &crate::domain::audit::AuditEvent = &$e;
            sql::insert_audit!(e).execute(&mut *$conn).await?;
            let message = crate::domain::webhook::Message::of_audit(e);
            if let Some(m) = message.filter(|m| ($subscribed)(m.event_type.as_str())) {
                sqlx::query(sql::INSERT_OUTBOX)
                    .bind(m.id.as_str())
                    .bind(m.event_type.as_str())
                    .bind(&m.payload)
                    .bind(e.at)
                    .execute(&mut *$conn)
                    .await?;
            }
            Ok::<(), sqlx::Error>(())
        }
    };
}

pub(super) use {
    insert_audit, insert_client, insert_issuer, insert_long, insert_rule, insert_signing_key, record_event,
    rotate_target, update_limit_row,
};

// ----- webhooks -----

/// A message fanned out to every receiver subscribed to its type: one pending delivery each,
/// due at once.
pub(super) const INSERT_OUTBOX: &str = "INSERT INTO webhook_deliveries \
     (message_id, webhook_id, event_type, payload, created_at, status, attempts, next_attempt_at) \
     SELECT $1, webhook_id, $2, $3, $4, 'pending', 0, $4 FROM webhook_events WHERE event_type = $2";
/// A receiver, unless there are `$5` already.
pub(super) const INSERT_WEBHOOK: &str = "INSERT INTO webhooks (id, url, secret_sealed, created_at) \
     SELECT $1, $2, $3, $4 WHERE (SELECT count(*) FROM webhooks) < $5";
pub(super) const INSERT_WEBHOOK_EVENT: &str = "INSERT INTO webhook_events (webhook_id, event_type) VALUES ($1, $2)";
pub(super) const LIST_WEBHOOKS: &str =
    "SELECT id, url, secret_sealed, created_at FROM webhooks ORDER BY created_at, id";
pub(super) const LIST_WEBHOOK_EVENTS: &str = "SELECT webhook_id, event_type FROM webhook_events";
pub(super) const SUBSCRIBED_EVENT_TYPES: &str = "SELECT DISTINCT event_type FROM webhook_events";
pub(super) const REMOVE_WEBHOOK: &str = "DELETE FROM webhooks WHERE id = $1";
/// The delivery columns, in the order of `DeliveryRow`.
macro_rules! delivery_columns {
    () => {
        "message_id, webhook_id, event_type, payload, created_at, status, attempts, next_attempt_at, last_error, finished_at"
    };
}
pub(super) const ANY_DUE_DELIVERY: &str =
    "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 LIMIT 1";
pub(super) const ANY_DUE_DELIVERY_OF: &str = "SELECT 1 FROM webhook_deliveries \
     WHERE webhook_id = $2 AND status = 'pending' AND next_attempt_at <= $1 LIMIT 1";
/// Claims a receiver's (`$4`) due deliveries: one more attempt each, not due again before the
/// lease ends (`$2`). SQLite has one writer, so the subquery and the update see the same rows.
pub(super) const CLAIM_DELIVERIES: &str = concat!(
    "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $2 \
     WHERE (message_id, webhook_id) IN (SELECT message_id, webhook_id FROM webhook_deliveries \
     WHERE webhook_id = $4 AND status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3) \
     RETURNING ",
    delivery_columns!()
);
/// The same on PostgreSQL: rows another instance is claiming are skipped, not waited for.
pub(super) const PG_CLAIM_DELIVERIES: &str = concat!(
    "UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = $2 \
     WHERE (message_id, webhook_id) IN (SELECT message_id, webhook_id FROM webhook_deliveries \
     WHERE webhook_id = $4 AND status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $3 \
     FOR UPDATE SKIP LOCKED) RETURNING ",
    delivery_columns!()
);
/// An attempt's outcome, written only if the delivery is still at that attempt (a claim whose
/// lease ran out and was taken over changes nothing).
pub(super) const UPDATE_DELIVERY: &str = "UPDATE webhook_deliveries \
     SET status = $3, next_attempt_at = $4, last_error = $5, finished_at = $6 \
     WHERE message_id = $1 AND webhook_id = $2 AND status = 'pending' AND attempts = $7";
pub(super) const LIST_DELIVERIES: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    " FROM webhook_deliveries WHERE (CAST($1 AS TEXT) IS NULL OR webhook_id = $1) \
     AND (CAST($2 AS TEXT) IS NULL OR status = $2) ORDER BY created_at DESC, message_id LIMIT $3"
);
/// Failed deliveries of a message scheduled again from the start of the retry schedule.
pub(super) const REDELIVER: &str = "UPDATE webhook_deliveries \
     SET status = 'pending', attempts = 0, next_attempt_at = $2, last_error = NULL, finished_at = NULL \
     WHERE message_id = $1 AND status = 'failed' AND (CAST($3 AS TEXT) IS NULL OR webhook_id = $3)";
pub(super) const PURGE_DELIVERIES: &str = "DELETE FROM webhook_deliveries WHERE (message_id, webhook_id) IN \
     (SELECT message_id, webhook_id FROM webhook_deliveries WHERE status <> 'pending' AND finished_at < $1 LIMIT $2)";
