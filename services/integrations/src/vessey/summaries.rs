//! The SMS an import sends each driver it gave new collections: one summary per driver per
//! import (how many collections on which day, the first pickup) instead of a message per
//! collection. Once in effect: each is keyed `import/<job>/<driver>`, so an attempt after a
//! crash records, charges and sends nothing twice; like every notification it is held to the
//! tenant's limits and allowed calling codes.

use chrono::NaiveDate;
use director_platform::identity::Caller;

use crate::app::App;
use crate::domain::tally::DriverSummary;
use crate::domain::{JobId, NotificationChannel, Tally};
use crate::error::IntegrationsError;
use crate::notifications::store::NewNotification;

/// Queues the summaries of `tally`'s drivers with a phone, when the tenant has Twilio.
pub async fn text_drivers(
    app: &App,
    caller: &Caller,
    job_id: JobId,
    date: NaiveDate,
    tally: &Tally,
) -> Result<(), IntegrationsError> {
    let texted: Vec<(&String, &DriverSummary, &String)> = tally
        .assignments
        .iter()
        .filter_map(|(driver, summary)| Some((driver, summary, summary.phone.as_ref()?)))
        .collect();
    if texted.is_empty() {
        return Ok(());
    }
    let providers = app.providers.for_tenant(caller).await?;
    let Ok(twilio) = providers.twilio() else {
        return Ok(());
    };
    let store = &app.notifications;
    let mut tx = store.db().begin(caller).await?;
    for (driver, summary, phone) in texted {
        let new = NewNotification {
            channel: NotificationChannel::Sms,
            recipient: Some(phone.clone()),
            message: message(date, summary),
            source_event_id: None,
            dedup_key: Some(format!("import/{job_id}/{driver}")),
        };
        match store.limits().check_destination(phone, &twilio.from_number) {
            Ok(()) => {
                store.queue_once_in(&mut tx, caller, new).await?;
            }
            Err(reason) => {
                store
                    .refuse_in(&mut tx, caller, new, &format!("to {reason}"))
                    .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// "3 collections assigned to you on 2026-11-23. First pickup: Collection at Green Acres at
/// 05:00 UTC."
fn message(date: NaiveDate, summary: &DriverSummary) -> String {
    let collections = if summary.tasks == 1 {
        "1 collection".to_owned()
    } else {
        format!("{} collections", summary.tasks)
    };
    let at = summary
        .first_window_start
        .map(|start| format!(" at {} UTC", start.format("%H:%M")))
        .unwrap_or_default();
    format!(
        "{collections} assigned to you on {date}. First pickup: {}{at}.",
        summary.first_title
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_summary_says_how_many_on_which_day_and_the_first_pickup() {
        let summary = DriverSummary {
            phone: None,
            tasks: 3,
            first_window_start: "2026-11-23T05:00:00Z".parse().ok(),
            first_title: "Collection at Green Acres".to_owned(),
        };
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        assert_eq!(
            message(day, &summary),
            "3 collections assigned to you on 2026-11-23. First pickup: Collection at Green \
             Acres at 05:00 UTC."
        );
        let one = DriverSummary {
            tasks: 1,
            first_window_start: None,
            ..summary
        };
        assert_eq!(
            message(day, &one),
            "1 collection assigned to you on 2026-11-23. First pickup: Collection at Green Acres."
        );
    }
}
