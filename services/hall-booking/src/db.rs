//! The service's tables (`hb_*`, created by its own migrations through
//! `Store::migrate_component`) and every query on them. Capacity and the one-booking-per-day
//! rule are decided inside one write transaction by a conditional `UPDATE` and a partial unique
//! index, so they hold under any concurrency on SQLite and PostgreSQL alike; nothing here
//! counts on a check made before the transaction.

use std::collections::HashSet;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tongban_store::{ComponentMigration, Store, StoreError};

use crate::halls::{self, HALLS};
use crate::schedule::{DAYS_AHEAD, LocalDate, slots};

/// The name the migrations are recorded under.
pub const COMPONENT: &str = "hall-booking";

/// Version 1 is the same SQL on both databases.
pub(crate) static MIGRATIONS: &[ComponentMigration] = &[ComponentMigration {
    version: 1,
    name: "bookings",
    sqlite: include_str!("../migrations/0001_bookings.sql"),
    postgres: include_str!("../migrations/0001_bookings.sql"),
}];

/// Cancelling closes this long before the slot starts.
pub(crate) const CANCEL_BEFORE_MS: i64 = 3_600_000;

/// Slots inserted per statement when generating: well under both databases' parameter limits.
const INSERT_BATCH: usize = 50;

/// How often a booking retries after losing a race on a unique key to a request that has
/// since committed (PostgreSQL only: SQLite's write transactions never overlap).
const RACE_RETRIES: u32 = 3;

/// The service's storage.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    store: Store,
}

/// A slot as stored.
#[derive(Clone, Debug)]
pub(crate) struct SlotRow {
    pub(crate) id: String,
    pub(crate) starts_at: i64,
    pub(crate) ends_at: i64,
    pub(crate) capacity: i64,
    pub(crate) booked: i64,
}

/// A booking with its slot's times.
#[derive(Clone, Debug)]
pub(crate) struct BookingRow {
    pub(crate) id: String,
    pub(crate) slot_id: String,
    pub(crate) hall_id: String,
    pub(crate) day: String,
    pub(crate) service: String,
    pub(crate) status: String,
    pub(crate) created_at: i64,
    pub(crate) cancelled_at: Option<i64>,
    pub(crate) starts_at: i64,
    pub(crate) ends_at: i64,
}

/// A booking request that passed validation.
#[derive(Debug)]
pub(crate) struct NewBooking<'a> {
    pub(crate) subject: &'a str,
    pub(crate) key: &'a str,
    pub(crate) slot_id: &'a str,
    pub(crate) service: &'a str,
    /// Digest of the request's fields: a key reused for another request is refused.
    pub(crate) digest: &'a str,
}

/// Why a booking was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    UnknownSlot,
    NotHandled,
    Past,
    AlreadyBooked,
    Full,
}

/// What a booking request came to: the answer (an envelope, as sent) made now or earlier.
#[derive(Debug)]
pub(crate) enum Booked {
    Fresh {
        answer: String,
        booking: Option<String>,
    },
    Replayed(String),
    KeyReused,
}

/// What a cancellation came to.
#[derive(Debug)]
pub(crate) enum Cancelled {
    Done(BookingRow),
    NotFound,
    TooLate,
}

const BOOKING_COLUMNS: &str = "b.id, b.slot_id, b.hall_id, b.day, b.service, b.status, \
     b.created_at, b.cancelled_at, s.starts_at, s.ends_at";

// === impl Db ===

impl Db {
    /// Applies the service's migrations to `store`.
    pub(crate) async fn open(store: Store) -> Result<Self, StoreError> {
        store.migrate_component(COMPONENT, MIGRATIONS).await?;
        Ok(Self { store })
    }

    /// Creates the slots of every hall for the booking window starting `today`, skipping the
    /// (hall, day) pairs that have them; returns how many were inserted. Safe to run on every
    /// instance at once: ids are deterministic and conflicts insert nothing.
    pub(crate) async fn ensure_slots(&self, today: LocalDate) -> Result<usize, StoreError> {
        let last = today.add_days(DAYS_AHEAD - 1);
        let rows = sqlx::query(
            "SELECT hall_id, day FROM hb_time_slots WHERE day >= $1 AND day <= $2 \
             GROUP BY hall_id, day",
        )
        .bind(today.to_string())
        .bind(last.to_string())
        .fetch_all(self.store.pool())
        .await?;
        let mut have = HashSet::new();
        for r in &rows {
            have.insert((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?));
        }
        let mut missing = Vec::new();
        for d in 0..DAYS_AHEAD {
            let day = today.add_days(d);
            for hall in HALLS {
                if !have.contains(&(hall.id.to_owned(), day.to_string())) {
                    missing.extend(slots(hall, day));
                }
            }
        }
        if missing.is_empty() {
            return Ok(0);
        }
        let mut tx = self.store.begin_write().await?;
        for chunk in missing.chunks(INSERT_BATCH) {
            let mut sql = String::from(
                "INSERT INTO hb_time_slots (id, hall_id, day, starts_at, ends_at, capacity, booked) \
                 VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 6;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, 0)",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6
                ));
            }
            sql.push_str(" ON CONFLICT (id) DO NOTHING");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for s in chunk {
                q = q
                    .bind(s.id.clone())
                    .bind(s.hall_id)
                    .bind(s.day.to_string())
                    .bind(s.starts_at_ms)
                    .bind(s.ends_at_ms)
                    .bind(i64::from(s.capacity));
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(missing.len())
    }

    /// The slots of a hall on a day, earliest first.
    pub(crate) async fn slots(
        &self,
        hall_id: &str,
        day: LocalDate,
    ) -> Result<Vec<SlotRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, starts_at, ends_at, capacity, booked FROM hb_time_slots \
             WHERE hall_id = $1 AND day = $2 ORDER BY starts_at",
        )
        .bind(hall_id)
        .bind(day.to_string())
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SlotRow {
                    id: r.try_get(0)?,
                    starts_at: r.try_get(1)?,
                    ends_at: r.try_get(2)?,
                    capacity: r.try_get(3)?,
                    booked: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Books, or answers what was answered to this key before. `render` makes the envelope
    /// that is sent and kept for the key, inside the transaction that books.
    pub(crate) async fn book<F>(
        &self,
        req: &NewBooking<'_>,
        now_ms: i64,
        render: F,
    ) -> Result<Booked, StoreError>
    where
        F: Fn(Result<&BookingRow, Refusal>) -> String,
    {
        let mut lost = 0;
        loop {
            match self.try_book(req, now_ms, &render).await {
                // A twin request (same key) or another booking of the same citizen for the
                // same hall and day committed first: start over and find its rows.
                Err(StoreError::Db(sqlx::Error::Database(e)))
                    if e.is_unique_violation() && lost < RACE_RETRIES =>
                {
                    lost += 1;
                }
                other => return other,
            }
        }
    }

    async fn try_book<F>(
        &self,
        req: &NewBooking<'_>,
        now_ms: i64,
        render: &F,
    ) -> Result<Booked, StoreError>
    where
        F: Fn(Result<&BookingRow, Refusal>) -> String,
    {
        let mut tx = self.store.begin_write().await?;
        let prior = sqlx::query(
            "SELECT request, answer FROM hb_idempotency_keys WHERE subject = $1 AND key = $2",
        )
        .bind(req.subject)
        .bind(req.key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = prior {
            let request: String = row.try_get(0)?;
            let answer: String = row.try_get(1)?;
            tx.rollback().await?;
            return Ok(if request == req.digest {
                Booked::Replayed(answer)
            } else {
                Booked::KeyReused
            });
        }
        // Claim the key first: on PostgreSQL a concurrent twin waits here until this
        // transaction ends, then fails on the primary key and replays this answer.
        sqlx::query(
            "INSERT INTO hb_idempotency_keys (subject, key, request, answer, created_at) \
             VALUES ($1, $2, $3, '', $4)",
        )
        .bind(req.subject)
        .bind(req.key)
        .bind(req.digest)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let decided = decide(&mut tx, req, now_ms).await?;
        let answer = render(decided.as_ref().map_err(|r| *r));
        sqlx::query("UPDATE hb_idempotency_keys SET answer = $3 WHERE subject = $1 AND key = $2")
            .bind(req.subject)
            .bind(req.key)
            .bind(&answer)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Booked::Fresh {
            answer,
            booking: decided.ok().map(|b| b.id),
        })
    }

    /// The citizen's bookings, the latest slot first (at most 100).
    pub(crate) async fn bookings_of(&self, subject: &str) -> Result<Vec<BookingRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BOOKING_COLUMNS} FROM hb_bookings b JOIN hb_time_slots s ON s.id = b.slot_id \
             WHERE b.subject = $1 ORDER BY s.starts_at DESC, b.created_at DESC LIMIT 100"
        )))
        .bind(subject)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(booking).collect()
    }

    /// Cancels the citizen's booking `id` and frees its seat. Another citizen's booking is
    /// `NotFound`, exactly like one that does not exist; cancelling twice answers the
    /// cancelled booking again (the gateway may retry a DELETE).
    pub(crate) async fn cancel(
        &self,
        subject: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<Cancelled, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let Some(row) = own_booking(&mut tx, subject, id).await? else {
            return Ok(Cancelled::NotFound);
        };
        if row.status != "active" {
            return Ok(Cancelled::Done(row));
        }
        if now_ms > row.starts_at - CANCEL_BEFORE_MS {
            return Ok(Cancelled::TooLate);
        }
        let done = sqlx::query(
            "UPDATE hb_bookings SET status = 'cancelled', cancelled_at = $2 \
             WHERE id = $1 AND status = 'active'",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        // Zero rows: a concurrent cancellation won, and it freed the seat.
        if done.rows_affected() == 1 {
            sqlx::query(
                "UPDATE hb_time_slots SET booked = booked - 1 WHERE id = $1 AND booked > 0",
            )
            .bind(&row.slot_id)
            .execute(&mut *tx)
            .await?;
        }
        let row = own_booking(&mut tx, subject, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(Cancelled::Done(row))
    }

    /// Forgets idempotency keys older than `before_ms`: a client retries within minutes.
    pub(crate) async fn purge_keys(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM hb_idempotency_keys WHERE created_at < $1")
            .bind(before_ms)
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

/// The decision, inside the booking transaction; the slot's seat is taken by the conditional
/// `UPDATE`, so two transactions can never both take the last one.
async fn decide(
    tx: &mut Transaction<'static, Any>,
    req: &NewBooking<'_>,
    now_ms: i64,
) -> Result<Result<BookingRow, Refusal>, StoreError> {
    let slot =
        sqlx::query("SELECT hall_id, day, starts_at, ends_at FROM hb_time_slots WHERE id = $1")
            .bind(req.slot_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(slot) = slot else {
        return Ok(Err(Refusal::UnknownSlot));
    };
    let hall_id: String = slot.try_get(0)?;
    let day: String = slot.try_get(1)?;
    let starts_at: i64 = slot.try_get(2)?;
    let ends_at: i64 = slot.try_get(3)?;
    let Some(hall) = halls::hall(&hall_id) else {
        return Ok(Err(Refusal::UnknownSlot));
    };
    if !hall.handles(req.service) {
        return Ok(Err(Refusal::NotHandled));
    }
    if starts_at <= now_ms {
        return Ok(Err(Refusal::Past));
    }
    let active = sqlx::query(
        "SELECT id FROM hb_bookings \
         WHERE subject = $1 AND hall_id = $2 AND day = $3 AND status = 'active'",
    )
    .bind(req.subject)
    .bind(&hall_id)
    .bind(&day)
    .fetch_optional(&mut **tx)
    .await?;
    if active.is_some() {
        return Ok(Err(Refusal::AlreadyBooked));
    }
    let taken = sqlx::query(
        "UPDATE hb_time_slots SET booked = booked + 1 WHERE id = $1 AND booked < capacity",
    )
    .bind(req.slot_id)
    .execute(&mut **tx)
    .await?;
    if taken.rows_affected() == 0 {
        return Ok(Err(Refusal::Full));
    }
    let id = tongban_crypto::encoding::hex_encode(&rand::random::<[u8; 16]>());
    sqlx::query(
        "INSERT INTO hb_bookings \
         (id, subject, slot_id, hall_id, day, service, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'active', $7)",
    )
    .bind(&id)
    .bind(req.subject)
    .bind(req.slot_id)
    .bind(&hall_id)
    .bind(&day)
    .bind(req.service)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(Ok(BookingRow {
        id,
        slot_id: req.slot_id.to_owned(),
        hall_id,
        day,
        service: req.service.to_owned(),
        status: "active".to_owned(),
        created_at: now_ms,
        cancelled_at: None,
        starts_at,
        ends_at,
    }))
}

async fn own_booking(
    tx: &mut Transaction<'static, Any>,
    subject: &str,
    id: &str,
) -> Result<Option<BookingRow>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {BOOKING_COLUMNS} FROM hb_bookings b JOIN hb_time_slots s ON s.id = b.slot_id \
         WHERE b.id = $1 AND b.subject = $2"
    )))
    .bind(id)
    .bind(subject)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(booking).transpose()
}

fn booking(r: &AnyRow) -> Result<BookingRow, StoreError> {
    Ok(BookingRow {
        id: r.try_get(0)?,
        slot_id: r.try_get(1)?,
        hall_id: r.try_get(2)?,
        day: r.try_get(3)?,
        service: r.try_get(4)?,
        status: r.try_get(5)?,
        created_at: r.try_get(6)?,
        cancelled_at: r.try_get(7)?,
        starts_at: r.try_get(8)?,
        ends_at: r.try_get(9)?,
    })
}
