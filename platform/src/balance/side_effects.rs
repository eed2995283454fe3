//! Which methods may be sent twice: those the protos mark
//! `option idempotency_level = NO_SIDE_EFFECTS;` (Get, List, Watch), read from descriptors
//! rather than listed by name, so a new read-only method is covered by its proto alone.

use std::collections::HashSet;
use std::sync::Arc;

use prost::Message;
use prost_types::method_options::IdempotencyLevel;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

/// The paths (`/package.Service/Method`) of methods without side effects.
#[derive(Debug, Clone, Default)]
pub struct SideEffectFree {
    paths: Arc<HashSet<String>>,
}

impl SideEffectFree {
    /// The methods of `files` marked `NO_SIDE_EFFECTS`.
    pub fn from_files<'a>(files: impl IntoIterator<Item = &'a FileDescriptorProto>) -> Self {
        let mut paths = HashSet::new();
        for file in files {
            let package = file.package();
            for service in &file.service {
                for method in &service.method {
                    let level = method
                        .options
                        .as_ref()
                        .map(|options| options.idempotency_level());
                    if level == Some(IdempotencyLevel::NoSideEffects) {
                        let service = if package.is_empty() {
                            service.name().to_owned()
                        } else {
                            format!("{package}.{}", service.name())
                        };
                        paths.insert(format!("/{service}/{}", method.name()));
                    }
                }
            }
        }
        Self {
            paths: Arc::new(paths),
        }
    }

    /// The methods of an encoded `FileDescriptorSet` marked `NO_SIDE_EFFECTS`.
    pub fn from_descriptor_set(encoded: &[u8]) -> Result<Self, prost::DecodeError> {
        let set = FileDescriptorSet::decode(encoded)?;
        Ok(Self::from_files(&set.file))
    }

    /// Whether the method at `path` has no side effects.
    pub fn contains(&self, path: &str) -> bool {
        self.paths.contains(path)
    }
}

#[cfg(test)]
mod tests {
    use prost_types::{MethodDescriptorProto, MethodOptions, ServiceDescriptorProto};

    use super::*;

    fn method(name: &str, level: Option<IdempotencyLevel>) -> MethodDescriptorProto {
        MethodDescriptorProto {
            name: Some(name.to_owned()),
            options: level.map(|level| MethodOptions {
                idempotency_level: Some(level as i32),
                ..MethodOptions::default()
            }),
            ..MethodDescriptorProto::default()
        }
    }

    #[test]
    fn only_methods_marked_no_side_effects_are_listed() {
        let file = FileDescriptorProto {
            package: Some("director.dispatch.v1".to_owned()),
            service: vec![ServiceDescriptorProto {
                name: Some("TasksService".to_owned()),
                method: vec![
                    method("GetTask", Some(IdempotencyLevel::NoSideEffects)),
                    method("CreateTask", None),
                    method("UpdateTask", Some(IdempotencyLevel::Idempotent)),
                ],
                ..ServiceDescriptorProto::default()
            }],
            ..FileDescriptorProto::default()
        };
        let free = SideEffectFree::from_descriptor_set(
            &FileDescriptorSet { file: vec![file] }.encode_to_vec(),
        )
        .unwrap_or_default();
        assert!(free.contains("/director.dispatch.v1.TasksService/GetTask"));
        assert!(!free.contains("/director.dispatch.v1.TasksService/CreateTask"));
        assert!(!free.contains("/director.dispatch.v1.TasksService/UpdateTask"));
    }
}
