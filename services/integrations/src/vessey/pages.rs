//! Following Vessey's `next_page` links without trusting them blindly.

use director_providers::ProviderError;

/// More pages than any real export has: a guard against a server that never says "last".
const MAX_PAGES: u32 = 100_000;

/// The page numbers to fetch: 1, then whatever each page names next, refusing links that
/// go backwards or repeat (they would loop forever).
#[derive(Debug, Clone)]
pub struct PageCursor {
    next: Option<u32>,
    fetched: u32,
}

impl PageCursor {
    pub fn new() -> Self {
        Self {
            next: Some(1),
            fetched: 0,
        }
    }

    /// The page to fetch next, if any.
    pub fn next(&self) -> Option<u32> {
        self.next
    }

    /// Records that `current` named `next_page`.
    pub fn advance(&mut self, current: u32, next_page: Option<u32>) -> Result<(), ProviderError> {
        self.fetched += 1;
        match next_page {
            Some(next) if next <= current => Err(ProviderError::InvalidResponse(format!(
                "Vessey page {current} names page {next} as the next one"
            ))),
            Some(_) if self.fetched >= MAX_PAGES => Err(ProviderError::InvalidResponse(format!(
                "Vessey returned more than {MAX_PAGES} pages"
            ))),
            next => {
                self.next = next;
                Ok(())
            }
        }
    }
}

impl Default for PageCursor {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_followed_until_none_and_backward_links_are_refused() {
        let mut cursor = PageCursor::new();
        assert_eq!(cursor.next(), Some(1));
        cursor.advance(1, Some(2)).expect("forward link");
        assert_eq!(cursor.next(), Some(2));
        assert!(cursor.advance(2, Some(2)).is_err());
        let mut cursor = PageCursor::new();
        cursor.advance(1, None).expect("last page");
        assert_eq!(cursor.next(), None);
    }
}
