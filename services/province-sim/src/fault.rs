//! Faults the simulator can be told to show: one request's, named in its `X-Sim-Fault` header,
//! or the next requests', queued through `POST /sim/faults`. Parsing and the queue, no I/O.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use tongban_core::mask::percent_decode;

/// The header that injects a fault into the request carrying it: `kind` then `;name=value`
/// parameters, as in `delay;ms=300` or `error_code;code=50002;msg=%E7%B9%81%E5%BF%99`.
pub const FAULT_HEADER: &str = "x-sim-fault";

/// Most requests one queued fault may cover.
pub const MAX_COUNT: u32 = 100_000;
/// Longest delay, milliseconds.
pub const MAX_DELAY_MS: u64 = 600_000;

/// How the simulator misbehaves for one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Waits `ms` milliseconds, then answers normally.
    Delay { ms: u64 },
    /// Takes the request and never answers.
    Hang,
    /// Closes the connection abruptly (TCP reset), without an answer.
    Reset,
    /// Answers this HTTP status with an HTML error page.
    Status { status: u16 },
    /// Answers 200 with JSON cut off midway.
    Malformed,
    /// Answers 200 with the envelope's non-zero `code` and `msg`.
    ErrorCode { code: i64, msg: String },
}

/// The kinds, as they are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Delay,
    Hang,
    Reset,
    Status,
    Malformed,
    ErrorCode,
}

/// A fault as written in `POST /sim/faults`: the kind, its parameters and how many of the
/// next requests it covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: Option<FaultKind>,
    /// How many of the next requests (default 1).
    #[serde(default)]
    pub count: Option<u32>,
    /// `delay`: milliseconds.
    #[serde(default)]
    pub ms: Option<u64>,
    /// `status`: the HTTP status (default 500).
    #[serde(default)]
    pub status: Option<u16>,
    /// `error_code`: the envelope code (default 50001).
    #[serde(default)]
    pub code: Option<i64>,
    /// `error_code`: the envelope message (default 系统繁忙).
    #[serde(default)]
    pub msg: Option<String>,
}

/// Queued faults, consumed first in, first out.
#[derive(Debug, Default)]
pub struct FaultQueue {
    queue: VecDeque<(Fault, u32)>,
}

/// A queued fault and how many requests it still covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pending {
    #[serde(flatten)]
    pub fault: Fault,
    pub remaining: u32,
}

// === impl Fault ===

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Self::Delay { .. } => FaultKind::Delay,
            Self::Hang => FaultKind::Hang,
            Self::Reset => FaultKind::Reset,
            Self::Status { .. } => FaultKind::Status,
            Self::Malformed => FaultKind::Malformed,
            Self::ErrorCode { .. } => FaultKind::ErrorCode,
        }
    }

    /// Reads the `X-Sim-Fault` header (which names one request's fault, so takes no count).
    pub fn from_header(v: &str) -> Result<Self, String> {
        let mut parts = v.split(';').map(str::trim);
        let kind = parts.next().unwrap_or_default();
        let kind: FaultKind = serde_json::from_value(serde_json::Value::String(kind.to_owned()))
            .map_err(|_| format!("未知的故障类型：{kind}"))?;
        let mut spec = FaultSpec {
            kind: Some(kind),
            ..FaultSpec::default()
        };
        for p in parts.filter(|p| !p.is_empty()) {
            let (name, value) = p
                .split_once('=')
                .ok_or_else(|| format!("参数须为 name=value：{p}"))?;
            let bad = || format!("参数 {name} 的值无效");
            match name.trim() {
                "ms" => spec.ms = Some(value.trim().parse().map_err(|_| bad())?),
                "status" => spec.status = Some(value.trim().parse().map_err(|_| bad())?),
                "code" => spec.code = Some(value.trim().parse().map_err(|_| bad())?),
                "msg" => spec.msg = Some(percent_decode(value.trim(), false).into_owned()),
                other => return Err(format!("未知参数：{other}")),
            }
        }
        spec.fault()
    }
}

// === impl FaultKind ===

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Delay => "delay",
            Self::Hang => "hang",
            Self::Reset => "reset",
            Self::Status => "status",
            Self::Malformed => "malformed",
            Self::ErrorCode => "error_code",
        }
    }
}

// === impl FaultSpec ===

impl FaultSpec {
    /// The fault this describes; a parameter that does not belong to the kind is an error, so
    /// a typo is not silently ignored.
    pub fn fault(&self) -> Result<Fault, String> {
        let kind = self.kind.ok_or("缺少 kind")?;
        let stray = |name: &str, given: bool| {
            if given {
                Err(format!("参数 {name} 不适用于 {}", kind.name()))
            } else {
                Ok(())
            }
        };
        if kind != FaultKind::Delay {
            stray("ms", self.ms.is_some())?;
        }
        if kind != FaultKind::Status {
            stray("status", self.status.is_some())?;
        }
        if kind != FaultKind::ErrorCode {
            stray("code", self.code.is_some())?;
            stray("msg", self.msg.is_some())?;
        }
        Ok(match kind {
            FaultKind::Delay => match self.ms {
                Some(ms) if ms <= MAX_DELAY_MS => Fault::Delay { ms },
                Some(_) => return Err(format!("ms 至多 {MAX_DELAY_MS}")),
                None => return Err("delay 须给出 ms".to_owned()),
            },
            FaultKind::Hang => Fault::Hang,
            FaultKind::Reset => Fault::Reset,
            FaultKind::Status => match self.status.unwrap_or(500) {
                status @ 200..=599 => Fault::Status { status },
                _ => return Err("status 须在 200 至 599 之间".to_owned()),
            },
            FaultKind::Malformed => Fault::Malformed,
            FaultKind::ErrorCode => match self.code.unwrap_or(50_001) {
                0 => return Err("code 不能为 0".to_owned()),
                code => Fault::ErrorCode {
                    code,
                    msg: self.msg.clone().unwrap_or_else(|| "系统繁忙".to_owned()),
                },
            },
        })
    }

    /// How many requests it covers.
    pub fn count(&self) -> Result<u32, String> {
        match self.count.unwrap_or(1) {
            n @ 1..=MAX_COUNT => Ok(n),
            _ => Err(format!("count 须在 1 至 {MAX_COUNT} 之间")),
        }
    }
}

// === impl FaultQueue ===

impl FaultQueue {
    pub fn push(&mut self, fault: Fault, count: u32) {
        self.queue.push_back((fault, count));
    }

    /// The fault of the next request, if one is queued.
    pub fn take(&mut self) -> Option<Fault> {
        let (fault, left) = self.queue.front_mut()?;
        *left -= 1;
        let fault = fault.clone();
        if *left == 0 {
            self.queue.pop_front();
        }
        Some(fault)
    }

    /// Empties the queue; returns how many requests the dropped faults still covered.
    pub fn clear(&mut self) -> u64 {
        let n = self.queue.iter().map(|(_, n)| u64::from(*n)).sum();
        self.queue.clear();
        n
    }

    pub fn pending(&self) -> Vec<Pending> {
        self.queue
            .iter()
            .map(|(fault, remaining)| Pending {
                fault: fault.clone(),
                remaining: *remaining,
            })
            .collect()
    }

    /// Requests still covered.
    pub fn remaining(&self) -> u64 {
        self.queue.iter().map(|(_, n)| u64::from(*n)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_a_kind_and_its_parameters() {
        assert_eq!(
            Fault::from_header("delay;ms=300"),
            Ok(Fault::Delay { ms: 300 })
        );
        assert_eq!(Fault::from_header(" hang "), Ok(Fault::Hang));
        assert_eq!(Fault::from_header("reset"), Ok(Fault::Reset));
        assert_eq!(
            Fault::from_header("status"),
            Ok(Fault::Status { status: 500 })
        );
        assert_eq!(
            Fault::from_header("status; status=503"),
            Ok(Fault::Status { status: 503 })
        );
        assert_eq!(Fault::from_header("malformed"), Ok(Fault::Malformed));
        assert_eq!(
            Fault::from_header("error_code;code=50002;msg=%E7%B9%81%E5%BF%99"),
            Ok(Fault::ErrorCode {
                code: 50002,
                msg: "繁忙".to_owned()
            })
        );
    }

    #[test]
    fn bad_faults_are_refused_with_a_reason() {
        for bad in [
            "",
            "explode",
            "delay",
            "delay;ms=abc",
            "delay;ms=600001",
            "status;status=700",
            "status;ms=3",
            "error_code;code=0",
            "hang;count=3",
            "reset;x",
        ] {
            let r = Fault::from_header(bad);
            assert!(r.is_err(), "{bad}: {r:?}");
        }
    }

    #[test]
    fn counts_are_bounded() {
        let spec = |count| FaultSpec {
            kind: Some(FaultKind::Hang),
            count,
            ..FaultSpec::default()
        };
        assert_eq!(spec(None).count(), Ok(1));
        assert_eq!(spec(Some(7)).count(), Ok(7));
        assert!(spec(Some(0)).count().is_err());
        assert!(spec(Some(MAX_COUNT + 1)).count().is_err());
    }

    #[test]
    fn the_queue_hands_out_faults_in_order_and_by_count() {
        let mut q = FaultQueue::default();
        assert_eq!(q.take(), None);
        q.push(Fault::Reset, 2);
        q.push(Fault::Malformed, 1);
        assert_eq!(q.remaining(), 3);
        assert_eq!(q.take(), Some(Fault::Reset));
        assert_eq!(q.pending()[0].remaining, 1);
        assert_eq!(q.take(), Some(Fault::Reset));
        assert_eq!(q.take(), Some(Fault::Malformed));
        assert_eq!(q.take(), None);
        q.push(Fault::Hang, 5);
        assert_eq!(q.clear(), 5);
        assert_eq!(q.take(), None);
    }
}
