//! Keeping a client's own secrets out of the text it produces.
//!
//! Every message a provider client makes — a [`crate::ProviderError`], the retry log line — is
//! built from parts that never hold a credential: the call's label, the kind of transport
//! failure, the HTTP status. One part comes from outside: the provider's own explanation in an
//! error answer, and a misbehaving (or hostile) provider can echo our request back in it — the
//! `Authorization` header, the URL with Slack's secret path or Twilio's account SID. So each
//! client knows its secrets and hands them to a [`Redactor`], which replaces every occurrence of
//! them (and of their percent-encoded, JSON-escaped and, for Twilio, basic-auth forms) with
//! `[redacted]` before the text is kept, printed or logged.
//!
//! Matching ignores ASCII case (a percent-encoding may use either case; a host name is
//! lowercased by URL parsing). Values shorter than [`MIN_SECRET_LEN`] bytes are not treated as
//! secrets: redacting every `"k"` would garble messages and no real credential is that short.

use std::fmt;
use std::sync::Arc;

use reqwest::Url;

/// What a secret is replaced with.
pub(crate) const REDACTED: &str = "[redacted]";

/// Values shorter than this are not redacted.
pub(crate) const MIN_SECRET_LEN: usize = 6;

/// Replaces a client's secrets in text. Cheap to clone; `Debug` shows how many it holds, never
/// them.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// Lowercased, longest first (a whole URL is redacted before a part of it).
    needles: Arc<[String]>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.needles.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor of `secrets` and their encoded forms.
    pub(crate) fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Self {
        let mut needles: Vec<String> = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            for form in [
                secret.to_owned(),
                percent_encode(secret),
                secret.replace('/', "\\/"),
            ] {
                let form = form.to_ascii_lowercase();
                if form.len() >= MIN_SECRET_LEN && !needles.contains(&form) {
                    needles.push(form);
                }
            }
        }
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        Self {
            needles: needles.into(),
        }
    }

    /// `text` with every secret replaced by `[redacted]`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in self.needles.iter() {
            let mut from = 0;
            loop {
                let lower = out[from..].to_ascii_lowercase();
                let Some(at) = lower.find(needle.as_str()) else {
                    break;
                };
                let start = from + at;
                out.replace_range(start..start + needle.len(), REDACTED);
                from = start + REDACTED.len();
            }
        }
        out
    }
}

/// The parts of `url` that may carry a credential: its password, user name and query string.
/// (A base URL is not itself a secret, but an operator may have put a token in one.)
pub(crate) fn url_credentials(url: &Url) -> Vec<String> {
    let mut parts = Vec::new();
    if !url.username().is_empty() {
        parts.push(url.username().to_owned());
    }
    parts.extend(url.password().map(str::to_owned));
    parts.extend(url.query().map(str::to_owned));
    parts
}

/// Every secret in a URL that is a credential as a whole (Slack's webhook): the URL, its path
/// (with and without the leading `/`), its last path segment, and [`url_credentials`].
pub(crate) fn secret_url_parts(url: &Url) -> Vec<String> {
    let mut parts = vec![url.as_str().to_owned()];
    let path = url.path();
    if path != "/" {
        parts.push(path.to_owned());
        parts.push(path.trim_matches('/').to_owned());
    }
    if let Some(last) = url
        .path_segments()
        .and_then(|mut s| s.rfind(|s| !s.is_empty()))
    {
        parts.push(last.to_owned());
    }
    parts.extend(url_credentials(url));
    parts
}

/// Every byte outside RFC 3986's unreserved set as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn secrets_and_their_encoded_forms_are_replaced_ignoring_case() {
        let redactor = Redactor::new(["T000/B000/slack-secret-XYZ", "tok3n-value"]);
        assert_eq!(
            redactor.redact("path T000/B000/slack-secret-XYZ and T000%2fB000%2Fslack-secret-XYZ"),
            "path [redacted] and [redacted]"
        );
        assert_eq!(
            redactor.redact("json T000\\/B000\\/slack-secret-XYZ, TOK3N-VALUE twice tok3n-value"),
            "json [redacted], [redacted] twice [redacted]"
        );
        assert_eq!(redactor.redact("nothing here"), "nothing here");
    }

    #[test]
    fn the_longest_secret_goes_first_and_short_values_are_not_secrets() {
        let url = Url::parse("https://hooks.example/services/T000/B000/slack-secret-XYZ").unwrap();
        let redactor = Redactor::new(secret_url_parts(&url).iter().chain(&["k".to_owned()]));
        assert_eq!(
            redactor.redact("posting to https://hooks.example/services/T000/B000/slack-secret-XYZ"),
            "posting to [redacted]"
        );
        assert_eq!(
            redactor.redact("keep k, drop slack-secret-xyz"),
            "keep k, drop [redacted]"
        );
    }

    #[test]
    fn a_secret_inside_the_replacement_does_not_loop() {
        let redactor = Redactor::new(["redacted", "[redacted]"]);
        assert_eq!(redactor.redact("a redacted b"), "a [redacted] b");
    }

    #[test]
    fn non_ascii_text_around_a_secret_survives() {
        let redactor = Redactor::new(["sécret-ünïcode"]);
        assert_eq!(redactor.redact("é sécret-ÜNÏCODE ü"), "é sécret-ÜNÏCODE ü");
        assert_eq!(redactor.redact("é sécret-ünïcode ü"), "é [redacted] ü");
    }

    #[test]
    fn debug_shows_only_how_many() {
        let redactor = Redactor::new(["hunter2-password"]);
        assert!(!format!("{redactor:?}").contains("hunter2"));
    }
}
