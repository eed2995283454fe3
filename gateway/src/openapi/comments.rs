//! Leading comments of services, methods, messages, fields and enum values, read from the
//! source info the descriptor set carries (prost-reflect exposes each descriptor's path in
//! its file; the comments live in the file's `source_code_info`).

use std::collections::HashMap;

use prost_reflect::DescriptorPool;

/// Every leading comment of the pool, by file name and descriptor path.
#[derive(Debug, Default)]
pub struct Comments {
    by_location: HashMap<(String, Vec<i32>), String>,
}

impl Comments {
    /// Indexes every file of `pool`.
    pub fn new(pool: &DescriptorPool) -> Self {
        let mut by_location = HashMap::new();
        for file in pool.files() {
            let proto = file.file_descriptor_proto();
            let Some(info) = &proto.source_code_info else {
                continue;
            };
            for location in &info.location {
                if let Some(text) = location.leading_comments.as_deref().map(clean)
                    && !text.is_empty()
                {
                    by_location.insert((file.name().to_owned(), location.path.clone()), text);
                }
            }
        }
        Self { by_location }
    }
}

/// A descriptor with a place in a file (service, method, message, field, enum, enum value).
pub trait Located {
    /// The file name and the descriptor's path in it.
    fn location(&self) -> (String, Vec<i32>);
}

macro_rules! located {
    ($($descriptor:ty),*) => {$(
        impl Located for $descriptor {
            fn location(&self) -> (String, Vec<i32>) {
                (self.parent_file().name().to_owned(), self.path().to_vec())
            }
        }
    )*};
}

located!(
    prost_reflect::ServiceDescriptor,
    prost_reflect::MethodDescriptor,
    prost_reflect::MessageDescriptor,
    prost_reflect::FieldDescriptor,
    prost_reflect::EnumDescriptor,
    prost_reflect::EnumValueDescriptor
);

impl Comments {
    /// The leading comment of `descriptor`.
    pub fn of(&self, descriptor: &impl Located) -> Option<&str> {
        self.by_location
            .get(&descriptor.location())
            .map(String::as_str)
    }
}

/// Trims each line (the space after `//`), drops blank edges.
fn clean(raw: &str) -> String {
    raw.lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// The first sentence of a comment, on one line: the operation summary.
pub fn summary(comment: &str) -> String {
    let paragraph = comment
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .replace('\n', " ");
    let end = paragraph
        .char_indices()
        .find(|&(index, ch)| {
            ch == '.'
                && paragraph[index + 1..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        })
        .map(|(index, _)| index + 1);
    match end {
        Some(end) => paragraph[..end].to_owned(),
        None => paragraph,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_first_sentence() {
        assert_eq!(
            summary("Returns one task, or NOT_FOUND (\"Task not found\").\nMore."),
            "Returns one task, or NOT_FOUND (\"Task not found\")."
        );
        assert_eq!(
            summary("Lists tasks, oldest\nscheduled first"),
            "Lists tasks, oldest scheduled first"
        );
        assert_eq!(
            summary("pending/assigned → assigned to an active driver."),
            "pending/assigned → assigned to an active driver."
        );
    }

    #[test]
    fn comment_lines_are_trimmed() {
        assert_eq!(clean(" One.\n Two.\n"), "One.\nTwo.");
    }
}
