//! An event's JSON read without building a tree of it: an object is the list of its
//! fields, each value kept as its raw JSON text borrowed from the input, and a field
//! is parsed only when the decoder asks for it, as the type it expects. Strings
//! without escapes are borrowed, numbers keep their exact text. This is what
//! [`super::decode`] reads; a `serde_json::Value` is only built to describe a value
//! in an error message.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The kind of a raw JSON value, from its first byte (the text is valid JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

pub fn kind(raw: &RawValue) -> Kind {
    match raw.get().as_bytes().first() {
        Some(b'n') => Kind::Null,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'"') => Kind::String,
        Some(b'[') => Kind::Array,
        Some(b'{') => Kind::Object,
        _ => Kind::Number,
    }
}

/// A JSON object's fields in input order, values raw.
#[derive(Debug, Default)]
pub struct Fields<'a> {
    pairs: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Fields<'a> {
    /// The fields of `json`, if it is an object: `Ok(None)` for valid JSON of another
    /// kind, an error for text that is not JSON.
    pub fn parse(json: &'a [u8]) -> Result<Option<Fields<'a>>, serde_json::Error> {
        let first = json.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            // Not an object: checked as JSON, so that the caller can say what it is.
            return serde_json::from_slice::<serde::de::IgnoredAny>(json).map(|_| None);
        }
        serde_json::from_slice::<Fields<'a>>(json).map(Some)
    }

    /// The fields of a raw value known to be an object.
    pub fn of(raw: &'a RawValue) -> Option<Fields<'a>> {
        if kind(raw) != Kind::Object {
            return None;
        }
        serde_json::from_str::<Fields<'a>>(raw.get()).ok()
    }

    /// The value of field `name`; the last one when the object repeats it, as
    /// `serde_json` reads objects.
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }
}

/// The string a raw value holds, borrowed when it has no escapes; `None` when it
/// is not a string.
pub fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    if kind(raw) != Kind::String {
        return None;
    }
    let text = raw.get();
    // The text was checked as JSON when its object was read: between the quotes,
    // without a backslash, it is the string itself.
    let inner = &text[1..text.len() - 1];
    if !inner.as_bytes().contains(&b'\\') {
        return Some(Cow::Borrowed(inner));
    }
    // Escapes: the string is unescaped into a copy.
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// The elements of a raw array; `None` when it is not an array.
pub fn items(raw: &RawValue) -> Option<Vec<&RawValue>> {
    if kind(raw) != Kind::Array {
        return None;
    }
    serde_json::from_str::<Vec<&RawValue>>(raw.get()).ok()
}

/// A short description of a raw value for error messages: its kind and, for
/// scalars, the value itself (truncated), as [`super::describe`] words a tree.
pub fn describe(raw: &RawValue) -> String {
    match kind(raw) {
        Kind::Null => "null".into(),
        Kind::Bool => format!("the boolean {}", raw.get()),
        Kind::Number => format!("the number {}", truncated(raw.get().to_owned())),
        Kind::String => format!(
            "the string {}",
            truncated(format!("{:?}", string(raw).unwrap_or_default()))
        ),
        Kind::Array => "an array".into(),
        Kind::Object => "an object".into(),
    }
}

/// `s` cut to its first 60 characters, marked when cut: how a scalar is quoted in an
/// error message, here and in [`super::describe`].
pub fn truncated(s: String) -> String {
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Fields<'de>, M::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(12));
                while let Some((Key(k), v)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    pairs.push((k, v));
                }
                Ok(Fields { pairs })
            }
        }
        d.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_raw_the_last_of_a_repeated_key_winning() {
        let json =
            br#" {"a": "x", "n": 12.50, "e": "t\u00e9", "a": "y", "o": {"k": [1, 2]}, "z": null} "#;
        let f = Fields::parse(json).unwrap().unwrap();
        assert_eq!(string(f.get("a").unwrap()).unwrap(), "y");
        assert!(matches!(
            string(f.get("a").unwrap()),
            Some(Cow::Borrowed(_))
        ));
        assert_eq!(string(f.get("e").unwrap()).unwrap(), "té");
        assert_eq!(f.get("n").unwrap().get(), "12.50");
        assert_eq!(kind(f.get("n").unwrap()), Kind::Number);
        assert_eq!(kind(f.get("z").unwrap()), Kind::Null);
        assert_eq!(string(f.get("n").unwrap()), None);
        let o = Fields::of(f.get("o").unwrap()).unwrap();
        let k = items(o.get("k").unwrap()).unwrap();
        assert_eq!(k.iter().map(|r| r.get()).collect::<Vec<_>>(), ["1", "2"]);
        assert!(f.get("missing").is_none());
        assert!(Fields::parse(b"[1]").unwrap().is_none());
        assert!(Fields::parse(b"5").unwrap().is_none());
        assert!(Fields::parse(b"{\"a\":").is_err());
        assert!(Fields::parse(b"{} x").is_err());
    }
}
