//! Explaining a plan profile by profile: which records each input profile produced, whether each
//! will be sent or was rejected (with CleverTap's code), what was fixed, and where it goes.
//!
//! Serializable for `POST /v1/transform`, and [`Display`](std::fmt::Display) for
//! `transform --explain`. Batching is not shown: that is the delivery engine's business.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::account::AccountId;
use crate::payload::WebhookPayload;
use crate::record::UploadRecord;
use crate::transform::Plan;
use crate::validate::{Fix, Rule};

/// A whole plan, explained per input profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Explanation {
    /// The campaign id the payload carried.
    pub target_id: Option<Value>,
    /// `true` for CleverTap's test call: nothing will be uploaded.
    pub is_test: bool,
    /// Totals.
    pub counts: ExplainCounts,
    /// One entry per input profile, in payload order.
    pub profiles: Vec<ProfileExplanation>,
}

/// Totals of an [`Explanation`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExplainCounts {
    /// Input profiles.
    pub profiles: usize,
    /// Records to send.
    pub send: usize,
    /// Records rejected before sending.
    pub rejected: usize,
    /// Fixes made to records (sent or not).
    pub fixes: usize,
}

/// What one input profile became.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileExplanation {
    /// Index in the payload's `profiles`.
    pub index: usize,
    /// The profile's `identity`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The profile's `objectId`, when it has one.
    #[serde(rename = "objectId", skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// The profile's `email`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The account its records go to (`None` when it produced no record).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub account: Option<AccountId>,
    /// Its records: the ones to send, then the rejected ones. Empty when the campaign turned
    /// both uploads off.
    pub records: Vec<RecordExplanation>,
}

/// One record and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordExplanation {
    /// `profile`, `event`, or `none` when no record could be built (no identifier).
    pub kind: RecordKind,
    /// The event name, for events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Sent or rejected.
    pub verdict: Verdict,
    /// CleverTap's code, for rejected records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// The rule broken, for rejected records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<Rule>,
    /// Why it was rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What was changed.
    pub fixes: Vec<Fix>,
    /// The record as it will be sent (or as far as it got).
    pub record: Value,
}

/// The kind of an explained record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// A profile record.
    Profile,
    /// An event record.
    Event,
    /// No record could be built.
    None,
}

/// Whether a record will be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// It is in the plan.
    Send,
    /// It is in `Plan::skipped`.
    Reject,
}

/// Explains a plan made from `payload`.
///
/// ```
/// use clevertap_etl_core::{explain, transform, Routing, TransformSpec, UnixSeconds, WebhookPayload};
/// use clevertap_etl_core::explain::Verdict;
///
/// let payload = WebhookPayload::from_slice(br#"{"key_values": {"target_account": "ACC-1",
///     "event_name": "App Launched"}, "profiles": [{"objectId": "__a"}]}"#)?;
/// let plan = transform(&payload, &TransformSpec::default(), &Routing::default(), UnixSeconds(0))?;
/// let why = explain(&payload, &plan);
/// let records = &why.profiles[0].records;
/// assert_eq!(records[0].verdict, Verdict::Send); // the profile record
/// assert_eq!((records[1].verdict, records[1].code), (Verdict::Reject, Some(513)));
/// println!("{why}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn explain(payload: &WebhookPayload, plan: &Plan) -> Explanation {
    let mut profiles: Vec<ProfileExplanation> = payload
        .profiles
        .iter()
        .enumerate()
        .map(|(index, p)| ProfileExplanation {
            index,
            identity: p.identity.clone(),
            object_id: p.object_id.clone(),
            email: p.email.clone(),
            account: None,
            records: Vec::new(),
        })
        .collect();
    let mut counts = ExplainCounts {
        profiles: profiles.len(),
        ..ExplainCounts::default()
    };
    for group in &plan.accounts {
        for planned in &group.records {
            let Some(entry) = profiles.get_mut(planned.profile) else {
                continue;
            };
            entry.account = Some(group.target.account_id().clone());
            counts.send += 1;
            counts.fixes += planned.fixes.len();
            let (kind, event) = match &planned.record {
                UploadRecord::Profile(_) => (RecordKind::Profile, None),
                UploadRecord::Event(e) => (RecordKind::Event, Some(e.evt_name.clone())),
            };
            entry.records.push(RecordExplanation {
                kind,
                event,
                verdict: Verdict::Send,
                code: None,
                rule: None,
                reason: None,
                fixes: planned.fixes.clone(),
                record: planned.record.to_value(),
            });
        }
    }
    for skipped in &plan.skipped {
        let Some(entry) = profiles.get_mut(skipped.profile) else {
            continue;
        };
        if entry.account.is_none() {
            entry.account.clone_from(&skipped.account);
        }
        counts.rejected += 1;
        counts.fixes += skipped.fixes.len();
        let kind = match skipped.record.get("type").and_then(Value::as_str) {
            Some("profile") => RecordKind::Profile,
            Some("event") => RecordKind::Event,
            _ => RecordKind::None,
        };
        entry.records.push(RecordExplanation {
            kind,
            event: skipped
                .record
                .get("evtName")
                .and_then(Value::as_str)
                .map(str::to_owned),
            verdict: Verdict::Reject,
            code: Some(skipped.code),
            rule: Some(skipped.rule),
            reason: Some(skipped.reason.clone()),
            fixes: skipped.fixes.clone(),
            record: skipped.record.clone(),
        });
    }
    Explanation {
        target_id: plan.target_id.clone(),
        is_test: plan.is_test,
        counts,
        profiles,
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        if let Some(id) = &self.target_id {
            write!(f, "campaign {id}: ")?;
        }
        writeln!(
            f,
            "{} profiles, {} records to send, {} rejected, {} fixes{}",
            c.profiles,
            c.send,
            c.rejected,
            c.fixes,
            if self.is_test {
                " (test call: nothing is uploaded)"
            } else {
                ""
            }
        )?;
        for p in &self.profiles {
            write!(f, "profiles[{}]", p.index)?;
            for (label, v) in [
                ("objectId", &p.object_id),
                ("identity", &p.identity),
                ("email", &p.email),
            ] {
                if let Some(v) = v {
                    write!(f, " {label}={v}")?;
                }
            }
            match &p.account {
                Some(a) => writeln!(f, " → {a}")?,
                None => writeln!(f)?,
            }
            if p.records.is_empty() {
                writeln!(f, "  (no records: uploads are off)")?;
            }
            for r in &p.records {
                let what = match (&r.kind, &r.event) {
                    (RecordKind::Event, Some(name)) => format!("event {name:?}"),
                    (RecordKind::Event, None) => "event".to_owned(),
                    (RecordKind::Profile, _) => "profile".to_owned(),
                    (RecordKind::None, _) => "no record".to_owned(),
                };
                match r.verdict {
                    Verdict::Send => writeln!(f, "  send    {what}")?,
                    Verdict::Reject => writeln!(
                        f,
                        "  reject  {what}: {} {}",
                        r.code.unwrap_or_default(),
                        r.reason.as_deref().unwrap_or_default()
                    )?,
                }
                for fix in &r.fixes {
                    let code = fix.code.map(|c| format!(" {c}")).unwrap_or_default();
                    writeln!(
                        f,
                        "    fix {}{code} {:?}: {}, {}",
                        fix.rule.name(),
                        fix.key,
                        fix.action.name(),
                        fix.detail
                    )?;
                }
            }
        }
        Ok(())
    }
}
