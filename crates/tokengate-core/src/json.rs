//! Strict JSON for token headers and claim sets.
//!
//! RFC 7515 §4 and RFC 7519 §4 let a parser either reject duplicate member names or keep the last
//! one; serde_json silently keeps the last. A gateway forwards claims to back ends whose parsers may
//! keep the first, so tokengate rejects duplicates everywhere, bounds nesting depth, and requires
//! the top level to be an object. Top-level members are kept as borrowed raw values so that only
//! the claims a policy asks for are ever decoded.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Up to this many members, duplicate names are found by a linear scan (no allocation, no
/// hashing); access tokens rarely carry more than 20 claims.
const LINEAR_SCAN_LIMIT: usize = 32;

/// Why a byte string is not an acceptable JSON object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// Not valid JSON (or not UTF-8, or trailing data).
    Syntax,
    /// Valid JSON, but the top level is not an object.
    NotAnObject,
    /// The same member name appears twice in one object.
    DuplicateMember,
    /// Objects or arrays nest deeper than allowed.
    TooDeep,
    /// A number outside the range of an IEEE 754 double (I-JSON, RFC 7493 §2.2), which other
    /// parsers on the request path would refuse or round to infinity.
    NumberOutOfRange,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Syntax => "is not valid UTF-8 JSON",
            Self::NotAnObject => "is not a JSON object",
            Self::DuplicateMember => "has a duplicate member name",
            Self::TooDeep => "nests objects or arrays too deeply",
            Self::NumberOutOfRange => "has a number outside the range of a double (RFC 7493)",
        })
    }
}

/// A parsed top-level JSON object whose member values are still raw, borrowed JSON text.
#[derive(Debug)]
pub struct JsonObject<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> JsonObject<'a> {
    /// Parses `bytes` as one JSON object, rejecting duplicates at any depth and nesting deeper
    /// than `max_depth` (the top-level object counts as depth 1).
    pub fn parse(bytes: &'a [u8], max_depth: usize) -> Result<Self, JsonError> {
        // Validating UTF-8 once up front lets serde_json read from a `str`, which does not
        // validate every string and raw value again.
        let text = std::str::from_utf8(bytes).map_err(|_| JsonError::Syntax)?;
        let failure = Cell::new(None);
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let members = TopLevel { failure: &failure }
            .deserialize(&mut deserializer)
            .map_err(|_| failure.get().unwrap_or(JsonError::Syntax))?;
        deserializer.end().map_err(|_| JsonError::Syntax)?;
        ensure_unique(members.iter().map(|(name, _)| name.as_ref()), members.len())?;
        for (_, raw) in &members {
            // Containers need the duplicate and depth checks; strings with escapes need their
            // escapes decoded (a lone surrogate such as "\ud800" is not valid text).
            if is_container(raw) || raw.get().contains('\\') {
                check_nested(raw.get(), max_depth.saturating_sub(1))?;
            }
            check_number_range(raw.get())?;
        }
        Ok(Self { members })
    }

    /// The raw JSON value of member `name`, if present.
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(member, _)| member == name)
            .map(|(_, raw)| *raw)
    }

    /// Whether member `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Members in document order, as (name, raw value).
    pub fn members(&self) -> impl Iterator<Item = (&str, &'a RawValue)> {
        self.members.iter().map(|(name, raw)| (name.as_ref(), *raw))
    }

    /// Member names in document order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(name, _)| name.as_ref())
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

/// Whether a raw value is an object or an array.
fn is_container(raw: &RawValue) -> bool {
    matches!(raw.get().as_bytes().first(), Some(b'{' | b'['))
}

/// Length, first byte and last byte of a member name.
type NameTag = (usize, Option<u8>, Option<u8>);

fn ensure_unique<'n>(
    names: impl Iterator<Item = &'n str> + Clone,
    count: usize,
) -> Result<(), JsonError> {
    if count <= LINEAR_SCAN_LIMIT {
        // A cheap tag (length, first and last byte) rules out most pairs before any memcmp.
        let tag = |name: &str| {
            let bytes = name.as_bytes();
            (bytes.len(), bytes.first().copied(), bytes.last().copied())
        };
        let mut seen: [(&str, NameTag); LINEAR_SCAN_LIMIT] =
            [("", (0, None, None)); LINEAR_SCAN_LIMIT];
        for (index, name) in names.enumerate() {
            let name_tag = tag(name);
            if seen[..index]
                .iter()
                .any(|(other, other_tag)| *other_tag == name_tag && *other == name)
            {
                return Err(JsonError::DuplicateMember);
            }
            seen[index] = (name, name_tag);
        }
        return Ok(());
    }
    let mut seen = HashSet::with_capacity(count);
    for name in names {
        if !seen.insert(name) {
            return Err(JsonError::DuplicateMember);
        }
    }
    Ok(())
}

/// Refuses a top-level number outside the range of a double. Nested numbers are parsed by
/// serde_json, which refuses them itself. Only a number with an exponent or hundreds of digits
/// can be out of range, so the common claims (`exp`, `iat`) are not parsed here.
fn check_number_range(text: &str) -> Result<(), JsonError> {
    let is_number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit());
    let may_overflow = text.len() > 300 || text.contains(['e', 'E']);
    if is_number && may_overflow && !text.parse::<f64>().is_ok_and(f64::is_finite) {
        return Err(JsonError::NumberOutOfRange);
    }
    Ok(())
}

fn check_nested(text: &str, depth_left: usize) -> Result<(), JsonError> {
    let failure = Cell::new(None);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    Checked {
        depth_left,
        failure: &failure,
    }
    .deserialize(&mut deserializer)
    .map_err(|_| failure.get().unwrap_or(JsonError::Syntax))
}

// === impl TopLevel ===

/// Reads the top-level object into borrowed (name, raw value) pairs.
struct TopLevel<'f> {
    failure: &'f Cell<Option<JsonError>>,
}

impl<'de> DeserializeSeed<'de> for TopLevel<'_> {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(12).min(32));
        while let Some(name) = map.next_key_seed(MemberName)? {
            let raw: &'de RawValue = map.next_value()?;
            members.push((name, raw));
        }
        Ok(members)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Self::Value, A::Error> {
        self.not_an_object()
    }
    fn visit_str<E: de::Error>(self, _v: &str) -> Result<Self::Value, E> {
        self.not_an_object()
    }
    fn visit_bool<E: de::Error>(self, _v: bool) -> Result<Self::Value, E> {
        self.not_an_object()
    }
    fn visit_i64<E: de::Error>(self, _v: i64) -> Result<Self::Value, E> {
        self.not_an_object()
    }
    fn visit_u64<E: de::Error>(self, _v: u64) -> Result<Self::Value, E> {
        self.not_an_object()
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<Self::Value, E> {
        self.not_an_object()
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.not_an_object()
    }
}

impl TopLevel<'_> {
    fn not_an_object<T, E: de::Error>(&self) -> Result<T, E> {
        self.failure.set(Some(JsonError::NotAnObject));
        Err(E::custom("not an object"))
    }
}

// === impl MemberName ===

/// Deserializes a member name, borrowing when the name has no escapes.
struct MemberName;

impl<'de> DeserializeSeed<'de> for MemberName {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberName {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

// === impl Checked ===

/// Walks any JSON value, rejecting duplicate member names and excessive depth, keeping nothing.
struct Checked<'f> {
    depth_left: usize,
    failure: &'f Cell<Option<JsonError>>,
}

impl Checked<'_> {
    fn fail<T, E: de::Error>(&self, error: JsonError) -> Result<T, E> {
        self.failure.set(Some(error));
        Err(E::custom(error))
    }

    fn child(&self) -> Result<Checked<'_>, JsonError> {
        match self.depth_left.checked_sub(1) {
            Some(depth_left) => Ok(Checked {
                depth_left,
                failure: self.failure,
            }),
            None => Err(JsonError::TooDeep),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Checked<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth_left == 0 {
            return self.fail(JsonError::TooDeep);
        }
        let mut names: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(name) = map.next_key_seed(MemberName)? {
            if !names.insert(name) {
                return self.fail(JsonError::DuplicateMember);
            }
            let child = match self.child() {
                Ok(child) => child,
                Err(error) => return self.fail(error),
            };
            map.next_value_seed(child)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth_left == 0 {
            return self.fail(JsonError::TooDeep);
        }
        loop {
            let child = match self.child() {
                Ok(child) => child,
                Err(error) => return self.fail(error),
            };
            if seq.next_element_seed(child)?.is_none() {
                return Ok(());
            }
        }
    }

    fn visit_str<E: de::Error>(self, _v: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _v: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _v: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _v: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<JsonObject<'_>, JsonError> {
        JsonObject::parse(text.as_bytes(), 4)
    }

    #[test]
    fn accepts_objects_and_keeps_raw_members() {
        let object = parse(r#"{"a":1,"b":"x","c":[1,{"d":2}],"e":{"f":{"g":1}}}"#).expect("valid");
        assert_eq!(object.len(), 4);
        assert_eq!(object.get("b").map(RawValue::get), Some(r#""x""#));
        assert!(object.get("d").is_none());
    }

    #[test]
    fn rejects_what_is_not_a_strict_object() {
        let cases: &[(&str, JsonError)] = &[
            ("[1,2]", JsonError::NotAnObject),
            ("\"s\"", JsonError::NotAnObject),
            ("42", JsonError::NotAnObject),
            ("null", JsonError::NotAnObject),
            ("{\"a\":1", JsonError::Syntax),
            ("{\"a\":1} x", JsonError::Syntax),
            ("{\"a\":1,}", JsonError::Syntax),
            ("\u{feff}{\"a\":1}", JsonError::Syntax),
            (r#"{"a":1,"a":2}"#, JsonError::DuplicateMember),
            (r#"{"a":1,"\u0061":2}"#, JsonError::DuplicateMember),
            (r#"{"x":{"a":1,"a":2}}"#, JsonError::DuplicateMember),
            (r#"{"x":[{"a":1,"a":2}]}"#, JsonError::DuplicateMember),
            (r#"{"x":[[[[1]]]]}"#, JsonError::TooDeep),
            (r#"{"x":{"y":{"z":{"w":{}}}}}"#, JsonError::TooDeep),
            (r#"{"x":"\ud800"}"#, JsonError::Syntax),
            (r#"{"x":{"y":"\udfff"}}"#, JsonError::Syntax),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).err(), Some(*expected), "{text}");
        }
    }

    #[test]
    fn finds_duplicates_among_many_members() {
        let mut text = String::from("{");
        for index in 0..40 {
            text.push_str(&format!("\"m{index}\":{index},"));
        }
        text.push_str("\"m7\":0}");
        assert_eq!(parse(&text).err(), Some(JsonError::DuplicateMember));
    }

    #[test]
    fn survives_pathological_nesting() {
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(5000), "]".repeat(5000));
        assert!(JsonObject::parse(deep.as_bytes(), 32).is_err());
    }
}
