//! The ids of the service's rows. Each is its own type: a notification's id where a job's is
//! expected does not compile (see the [module docs](super)).

director_platform::uuid_id! {
    /// A row of `jobs`: one sync or import, as the tenant sees it.
    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(transparent)]
    pub struct JobId;
}

director_platform::uuid_id! {
    /// A row of `notifications`: one SMS or Slack message and its delivery log.
    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(transparent)]
    pub struct NotificationId;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_id_travels_in_a_payload_as_its_uuid() {
        let id = JobId::new_random();
        let json = serde_json::to_value(id).unwrap();
        assert_eq!(json, serde_json::Value::String(id.to_string()));
        assert_eq!(serde_json::from_value::<JobId>(json).unwrap(), id);
    }
}
