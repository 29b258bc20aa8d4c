//! What an audited operation changed: a map from field name to old and new value.
//!
//! Every field of an audited resource is classified, as Coder does:
//! - `track`: the field appears in the diff when its value changed;
//! - `ignore`: the field never appears (timestamps, caches, derived values);
//! - `secret`: a change is recorded with `secret: true` and null values, never the contents.
//!
//! Rust resource types get their diff from the [`auditable!`](crate::auditable) macro, which
//! refuses to compile a struct with an unclassified field. Services that hold resources as
//! JSON use [`diff_json_objects`] with a classification table, which refuses unclassified
//! fields at run time.

use std::collections::BTreeMap;
use std::collections::btree_map;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EventError;

/// How a field of an audited resource takes part in its diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldClass {
    /// Recorded with old and new value when it changed.
    Track,
    /// Never recorded.
    Ignore,
    /// Recorded as changed, without its values.
    Secret,
}

/// One changed field: its old and new value, or only the fact of a change if it is secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffEntry {
    /// The value before the operation; null for secret fields.
    #[serde(default)]
    pub old: Value,
    /// The value after the operation; null for secret fields.
    #[serde(default)]
    pub new: Value,
    /// Whether the field is secret, in which case `old` and `new` are null.
    #[serde(default)]
    pub secret: bool,
}

impl DiffEntry {
    /// A tracked field that changed from `old` to `new`.
    ///
    /// ```
    /// use auditlog_event::DiffEntry;
    /// let entry = DiffEntry::changed("dev".into(), "prod".into());
    /// assert!(!entry.secret);
    /// ```
    pub fn changed(old: Value, new: Value) -> Self {
        DiffEntry {
            old,
            new,
            secret: false,
        }
    }

    /// A secret field that changed; its values are never recorded.
    ///
    /// ```
    /// use auditlog_event::DiffEntry;
    /// assert!(DiffEntry::secret().old.is_null());
    /// ```
    pub fn secret() -> Self {
        DiffEntry {
            old: Value::Null,
            new: Value::Null,
            secret: true,
        }
    }
}

/// The changed fields of an audited resource, ordered by field name.
///
/// Serializes to JSON as Coder's shape: `{"name": {"old": .., "new": .., "secret": false}}`.
///
/// ```
/// use auditlog_event::{Diff, DiffEntry};
/// let mut diff = Diff::new();
/// diff.insert("name", DiffEntry::changed("a".into(), "b".into()));
/// assert_eq!(diff.len(), 1);
/// assert_eq!(diff.get("name").unwrap().new, "b");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Diff {
    entries: BTreeMap<String, DiffEntry>,
}

impl Diff {
    /// An empty diff.
    pub fn new() -> Self {
        Diff::default()
    }

    /// Number of changed fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of one field.
    pub fn get(&self, field: &str) -> Option<&DiffEntry> {
        self.entries.get(field)
    }

    /// Records a change, returning the entry it replaced.
    pub fn insert(&mut self, field: impl Into<String>, entry: DiffEntry) -> Option<DiffEntry> {
        self.entries.insert(field.into(), entry)
    }

    /// Wraps entries a decoder has already checked for duplicates.
    pub(crate) fn from_entries(entries: BTreeMap<String, DiffEntry>) -> Self {
        Diff { entries }
    }

    /// The changed fields in name order.
    pub fn iter(&self) -> btree_map::Iter<'_, String, DiffEntry> {
        self.entries.iter()
    }
}

impl<'a> IntoIterator for &'a Diff {
    type Item = (&'a String, &'a DiffEntry);
    type IntoIter = btree_map::Iter<'a, String, DiffEntry>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl IntoIterator for Diff {
    type Item = (String, DiffEntry);
    type IntoIter = btree_map::IntoIter<String, DiffEntry>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<K: Into<String>> FromIterator<(K, DiffEntry)> for Diff {
    fn from_iter<I: IntoIterator<Item = (K, DiffEntry)>>(entries: I) -> Self {
        Diff {
            entries: entries
                .into_iter()
                .map(|(field, entry)| (field.into(), entry))
                .collect(),
        }
    }
}

/// A resource type whose changes are audited field by field.
///
/// Implement it with [`auditable!`](crate::auditable), which classifies every field.
pub trait Auditable {
    /// Every field with its class, in declaration order.
    const FIELD_CLASSES: &'static [(&'static str, FieldClass)];

    /// The diff from `old` to `new`: changed tracked and secret fields, never ignored ones.
    fn diff(old: &Self, new: &Self) -> Diff;
}

/// Defines a struct whose every field is classified `track`, `ignore` or `secret`, and
/// implements [`Auditable`] for it.
///
/// Tracked fields need `PartialEq + serde::Serialize`, secret fields `PartialEq`. Diff keys
/// are the Rust field names. A field's visibility goes before its class
/// (`pub track name: String`).
///
/// ```
/// use auditlog_event::{auditable, Auditable};
///
/// auditable! {
///     #[derive(Debug, Clone)]
///     pub struct Workspace {
///         pub track name: String,
///         track template_id: u64,
///         ignore updated_at: i64,
///         secret ssh_private_key: String,
///     }
/// }
///
/// let old = Workspace { name: "dev".into(), template_id: 1, updated_at: 1, ssh_private_key: "k1".into() };
/// let new = Workspace { name: "prod".into(), updated_at: 2, ssh_private_key: "k2".into(), ..old.clone() };
/// let diff = Workspace::diff(&old, &new);
/// assert_eq!(diff.get("name").unwrap().new, "prod");
/// assert!(diff.get("ssh_private_key").unwrap().secret);
/// assert!(diff.get("updated_at").is_none());
/// assert!(diff.get("template_id").is_none());
/// ```
///
/// A field without a class does not compile:
///
/// ```compile_fail
/// use auditlog_event::auditable;
///
/// auditable! {
///     pub struct Workspace {
///         track name: String,
///         owner_id: u64,
///     }
/// }
/// ```
///
/// Nor does a misspelled class:
///
/// ```compile_fail
/// use auditlog_event::auditable;
///
/// auditable! {
///     pub struct Workspace {
///         tracked name: String,
///     }
/// }
/// ```
#[macro_export]
macro_rules! auditable {
    (
        $(#[$struct_meta:meta])*
        $struct_vis:vis struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field_vis:vis $class:ident $field:ident : $field_type:ty
            ),* $(,)?
        }
    ) => {
        $(#[$struct_meta])*
        $struct_vis struct $name {
            $(
                $(#[$field_meta])*
                $field_vis $field: $field_type,
            )*
        }

        impl $crate::Auditable for $name {
            const FIELD_CLASSES: &'static [(&'static str, $crate::FieldClass)] = &[
                $( (::core::stringify!($field), $crate::__auditable_class!($class)), )*
            ];

            fn diff(old: &Self, new: &Self) -> $crate::Diff {
                #[allow(unused_mut)]
                let mut diff = $crate::Diff::new();
                $( $crate::__auditable_field!($class, diff, old, new, $field); )*
                diff
            }
        }
    };
    ($($unmatched:tt)*) => {
        ::core::compile_error!(
            "auditable! expects a struct whose every field starts with its class: \
             `track name: Type`, `ignore name: Type` or `secret name: Type`"
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __auditable_class {
    (track) => {
        $crate::FieldClass::Track
    };
    (ignore) => {
        $crate::FieldClass::Ignore
    };
    (secret) => {
        $crate::FieldClass::Secret
    };
    ($other:ident) => {
        ::core::compile_error!(::core::concat!(
            "unknown field class `",
            ::core::stringify!($other),
            "`: use track, ignore or secret"
        ))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __auditable_field {
    (track, $diff:ident, $old:ident, $new:ident, $field:ident) => {
        if $old.$field != $new.$field {
            $diff.insert(
                ::core::stringify!($field),
                $crate::DiffEntry::changed(
                    $crate::__private::to_json(&$old.$field),
                    $crate::__private::to_json(&$new.$field),
                ),
            );
        }
    };
    (secret, $diff:ident, $old:ident, $new:ident, $field:ident) => {
        if $old.$field != $new.$field {
            $diff.insert(::core::stringify!($field), $crate::DiffEntry::secret());
        }
    };
    // Reading the field keeps the compiler from calling an ignored private field unused.
    (ignore, $diff:ident, $old:ident, $new:ident, $field:ident) => {
        let _ = (&$old.$field, &$new.$field);
    };
    ($other:ident, $diff:ident, $old:ident, $new:ident, $field:ident) => {};
}

/// Helpers the macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    use serde::Serialize;
    use serde_json::Value;

    /// A tracked value as JSON.
    ///
    /// Serializing fails only for types whose `Serialize` does (a map with non-string keys,
    /// a custom impl that errors). The change is still recorded then, with a null value,
    /// because losing the fact of a change is worse than losing its value.
    pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Value {
        serde_json::to_value(value).unwrap_or(Value::Null)
    }
}

/// Diffs two JSON objects field by field with a classification table.
///
/// A field present in either object but absent from `classes` is an error, the run-time
/// counterpart of [`auditable!`](crate::auditable) refusing to compile. A field present on one
/// side only compares as null on the other.
///
/// ```
/// use auditlog_event::{diff_json_objects, FieldClass};
/// use serde_json::json;
///
/// let classes = [
///     ("name", FieldClass::Track),
///     ("updated_at", FieldClass::Ignore),
///     ("token", FieldClass::Secret),
/// ];
/// let old = json!({"name": "dev", "updated_at": 1, "token": "a"});
/// let new = json!({"name": "prod", "updated_at": 2, "token": "b"});
/// let diff = diff_json_objects(&old, &new, &classes)?;
/// assert_eq!(diff.get("name").unwrap().old, "dev");
/// assert!(diff.get("token").unwrap().secret);
/// assert_eq!(diff.len(), 2);
/// # Ok::<(), auditlog_event::EventError>(())
/// ```
pub fn diff_json_objects(
    old: &Value,
    new: &Value,
    classes: &[(&str, FieldClass)],
) -> Result<Diff, EventError> {
    let Some(old_object) = old.as_object() else {
        return Err(EventError::NotAnObject { field: "old" });
    };
    let Some(new_object) = new.as_object() else {
        return Err(EventError::NotAnObject { field: "new" });
    };
    let class_of = |field: &str| {
        classes
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, class)| *class)
    };

    let mut diff = Diff::new();
    let new_only_fields = new_object
        .keys()
        .filter(|field| !old_object.contains_key(field.as_str()));
    for field in old_object.keys().chain(new_only_fields) {
        let Some(class) = class_of(field) else {
            return Err(EventError::UnclassifiedField {
                field: field.clone(),
            });
        };
        let old_value = old_object.get(field).unwrap_or(&Value::Null);
        let new_value = new_object.get(field).unwrap_or(&Value::Null);
        if old_value == new_value {
            continue;
        }
        match class {
            FieldClass::Track => {
                diff.insert(
                    field.as_str(),
                    DiffEntry::changed(old_value.clone(), new_value.clone()),
                );
            }
            FieldClass::Secret => {
                diff.insert(field.as_str(), DiffEntry::secret());
            }
            FieldClass::Ignore => {}
        }
    }
    Ok(diff)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    crate::auditable! {
        #[derive(Debug, Clone, PartialEq)]
        struct Template {
            track name: String,
            track max_ttl_hours: Option<u32>,
            track tags: Vec<String>,
            ignore updated_at: i64,
            secret provisioner_token: String,
        }
    }

    fn template() -> Template {
        Template {
            name: "docker".into(),
            max_ttl_hours: Some(8),
            tags: vec!["a".into()],
            updated_at: 1,
            provisioner_token: "s3cr3t".into(),
        }
    }

    #[test]
    fn identical_values_have_an_empty_diff() {
        assert!(Template::diff(&template(), &template()).is_empty());
    }

    #[test]
    fn only_changed_tracked_fields_appear_with_json_values() {
        let old = template();
        let new = Template {
            max_ttl_hours: None,
            tags: vec!["a".into(), "b".into()],
            ..template()
        };
        let diff = Template::diff(&old, &new);
        assert_eq!(diff.len(), 2);
        assert_eq!(
            diff.get("max_ttl_hours"),
            Some(&DiffEntry::changed(json!(8), Value::Null))
        );
        assert_eq!(
            diff.get("tags"),
            Some(&DiffEntry::changed(json!(["a"]), json!(["a", "b"])))
        );
        assert!(diff.get("name").is_none());
    }

    #[test]
    fn ignored_fields_never_appear() {
        let new = Template {
            updated_at: 99,
            ..template()
        };
        assert!(Template::diff(&template(), &new).is_empty());
    }

    #[test]
    fn changed_secret_fields_appear_without_their_contents() {
        let new = Template {
            provisioner_token: "n3w".into(),
            ..template()
        };
        let diff = Template::diff(&template(), &new);
        assert_eq!(diff.get("provisioner_token"), Some(&DiffEntry::secret()));
        let text = serde_json::to_string(&diff).unwrap();
        assert!(!text.contains("s3cr3t") && !text.contains("n3w"), "{text}");
    }

    #[test]
    fn field_classes_are_listed_in_declaration_order() {
        assert_eq!(
            Template::FIELD_CLASSES,
            &[
                ("name", FieldClass::Track),
                ("max_ttl_hours", FieldClass::Track),
                ("tags", FieldClass::Track),
                ("updated_at", FieldClass::Ignore),
                ("provisioner_token", FieldClass::Secret),
            ]
        );
    }

    #[test]
    fn diff_serializes_as_coders_shape() {
        let diff: Diff = [("name", DiffEntry::changed(json!("a"), json!("b")))]
            .into_iter()
            .collect();
        assert_eq!(
            serde_json::to_value(&diff).unwrap(),
            json!({"name": {"old": "a", "new": "b", "secret": false}})
        );
        let parsed: Diff =
            serde_json::from_value(json!({"t": {"old": null, "new": null, "secret": true}}))
                .unwrap();
        assert_eq!(parsed.get("t"), Some(&DiffEntry::secret()));
    }

    const CLASSES: &[(&str, FieldClass)] = &[
        ("name", FieldClass::Track),
        ("ttl", FieldClass::Track),
        ("updated_at", FieldClass::Ignore),
        ("token", FieldClass::Secret),
    ];

    #[test]
    fn json_diff_follows_the_classification_table() {
        let old = json!({"name": "a", "updated_at": 1, "token": "x"});
        let new = json!({"name": "a", "ttl": 5, "updated_at": 2, "token": "y"});
        let diff = diff_json_objects(&old, &new, CLASSES).unwrap();
        let expected: Diff = [
            ("token", DiffEntry::secret()),
            ("ttl", DiffEntry::changed(Value::Null, json!(5))),
        ]
        .into_iter()
        .collect();
        assert_eq!(diff, expected);
    }

    #[test]
    fn json_diff_rejects_unclassified_fields_and_non_objects() {
        let error =
            diff_json_objects(&json!({"name": "a"}), &json!({"owner": "b"}), CLASSES).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"field "owner" is not classified as track, ignore or secret"#
        );
        let error = diff_json_objects(&json!([1]), &json!({}), CLASSES).unwrap_err();
        assert_eq!(error.to_string(), "old must be a json object");
        let error = diff_json_objects(&json!({}), &json!("x"), CLASSES).unwrap_err();
        assert_eq!(error.to_string(), "new must be a json object");
    }
}
