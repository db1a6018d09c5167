//! Reading JSON configuration by hand: a document as a tree, and typed readers that name
//! the member at fault when a value has the wrong type.
//!
//! Why not serde's derived deserialisers: they are generic over the deserialiser, and one
//! profile format made about 40 KB of the component's code (a visitor per struct, per
//! enum and per field list), plus core's float formatting for their "invalid type:
//! floating point" messages. Reading a tree is one small parser and a few readers; its
//! errors name a member by its path (`token-requests.refresh.params[0].name`), which
//! says more than a line and column in a string the host passed.
//!
//! The messages follow serde's wording, so that they read the same as before.

use crate::prelude::*;

use core::fmt::{self, Display};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value. Objects keep their members in document order; a repeated member name is
/// refused while parsing.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A non-negative integer.
    Unsigned(u64),
    /// A negative integer.
    Negative(i64),
    /// A number with a fraction or exponent, or beyond 64 bits.
    Float(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object's members, in order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses `text` (one JSON value, whitespace around it allowed). The error is
    /// serde_json's, with its line and column.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(text.as_bytes())
    }

    /// What the value is, for "invalid type" messages (serde's `Unexpected` wording).
    fn kind(&self) -> Kind<'_> {
        Kind(self)
    }
}

/// A value as an "invalid type" message names it.
struct Kind<'a>(&'a Json);

impl Display for Kind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Json::Null => f.write_str("null"),
            Json::Bool(value) => write!(f, "boolean `{value}`"),
            Json::Unsigned(value) => write!(f, "integer `{value}`"),
            Json::Negative(value) => write!(f, "integer `{value}`"),
            // serde_json's own float formatting: core's would add ~16 KB to the component.
            Json::Float(value) => match serde_json::Number::from_f64(*value) {
                Some(number) => write!(f, "floating point `{number}`"),
                None => f.write_str("floating point"),
            },
            Json::String(value) => write!(f, "string \"{value}\""),
            Json::Array(_) => f.write_str("sequence"),
            Json::Object(_) => f.write_str("map"),
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Json, E> {
        Ok(Json::Bool(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Json, E> {
        Ok(Json::Unsigned(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Json, E> {
        Ok(match u64::try_from(value) {
            Ok(value) => Json::Unsigned(value),
            Err(_) => Json::Negative(value),
        })
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Json, E> {
        Ok(Json::Float(value))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Json, E> {
        Ok(Json::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Json, E> {
        Ok(Json::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Json, A::Error> {
        let mut array = Vec::new();
        while let Some(item) = items.next_element()? {
            array.push(item);
        }
        Ok(Json::Array(array))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Json, A::Error> {
        let mut object: Vec<(String, Json)> = Vec::new();
        while let Some(name) = members.next_key::<String>()? {
            // A repeated member would silently replace the first: refused, as serde's
            // derived deserialisers refuse a duplicate field.
            if object.iter().any(|(seen, _)| *seen == name) {
                return Err(de::Error::custom(format_args!("duplicate field `{name}`")));
            }
            let value = members.next_value()?;
            object.push((name, value));
        }
        Ok(Json::Object(object))
    }
}

/// Where a value sits in the document: the members and positions that lead to it.
#[derive(Clone, Copy)]
pub struct At<'a> {
    parent: Option<&'a At<'a>>,
    step: Step<'a>,
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Member(&'a str),
    Index(usize),
}

impl<'a> At<'a> {
    /// The document itself.
    pub const ROOT: At<'static> = At {
        parent: None,
        step: Step::Root,
    };

    /// The member `name` of the object here.
    pub fn member(&'a self, name: &'a str) -> At<'a> {
        At {
            parent: Some(self),
            step: Step::Member(name),
        }
    }

    /// The item `index` of the array here.
    pub fn index(&'a self, index: usize) -> At<'a> {
        At {
            parent: Some(self),
            step: Step::Index(index),
        }
    }

    /// An error about the value here, which names it unless it is the document itself.
    pub fn invalid(&self, message: impl Display) -> Invalid {
        Invalid(match self.parent {
            Some(_) => format!("`{self}`: {message}"),
            None => message.to_string(),
        })
    }

    /// "invalid type" for `value`, which should be `expected`.
    pub fn wrong_type(&self, value: &Json, expected: &str) -> Invalid {
        self.invalid(format_args!(
            "invalid type: {}, expected {expected}",
            value.kind()
        ))
    }
}

impl Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            parent.fmt(f)?;
        }
        match self.step {
            Step::Root => Ok(()),
            Step::Member(name) if matches!(self.parent, Some(At { parent: None, .. })) => {
                f.write_str(name)
            }
            Step::Member(name) => write!(f, ".{name}"),
            Step::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// Why a document does not fit the format: the member's path and serde's wording, for
/// example "`token-url`: invalid type: integer `5`, expected a string".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid(pub String);

/// An object whose member names have been checked against the format's; its members are
/// taken out by name.
pub struct Object<'a> {
    members: Vec<(String, Json)>,
    at: At<'a>,
}

impl<'a> Object<'a> {
    /// `value` as an object (`what` names it in the message if it is not one) whose
    /// members are all among `names`.
    pub fn new(
        value: Json,
        at: At<'a>,
        what: &str,
        names: &'static [&'static str],
    ) -> Result<Self, Invalid> {
        let members = match value {
            Json::Object(members) => members,
            // serde's derived deserialisers also read a struct from an array of its fields'
            // values in order, the missing ones taking their defaults; so does this reader.
            Json::Array(items) if items.len() <= names.len() => names
                .iter()
                .map(|name| String::from(*name))
                .zip(items)
                .collect(),
            Json::Array(items) => {
                return Err(at.invalid(format_args!(
                    "invalid length {}, expected {what} of at most {} values",
                    items.len(),
                    names.len()
                )));
            }
            other => return Err(at.wrong_type(&other, what)),
        };
        if let Some((unknown, _)) = members
            .iter()
            .find(|(name, _)| !names.contains(&name.as_str()))
        {
            return Err(at.member(unknown).invalid(format_args!(
                "unknown field `{unknown}`, expected {}",
                OneOf(names)
            )));
        }
        Ok(Self { members, at })
    }

    /// Takes the member `name` out, if present.
    pub fn take(&mut self, name: &str) -> Option<Json> {
        let position = self.members.iter().position(|(member, _)| member == name)?;
        Some(self.members.swap_remove(position).1)
    }

    /// Reads the member `name` with `read` (at its path), refusing its absence.
    pub fn required<T>(
        &mut self,
        name: &'static str,
        read: impl FnOnce(Json, &At<'_>) -> Result<T, Invalid>,
    ) -> Result<T, Invalid> {
        match self.take(name) {
            Some(value) => read(value, &self.at.member(name)),
            None => Err(self.at.invalid(format_args!("missing field `{name}`"))),
        }
    }

    /// Reads the member `name`, if present, into `field` with `read` (at its path); an
    /// absent member leaves the field as it is (its default).
    pub fn read_into<T>(
        &mut self,
        name: &'static str,
        field: &mut T,
        read: impl FnOnce(Json, &At<'_>) -> Result<T, Invalid>,
    ) -> Result<(), Invalid> {
        if let Some(value) = self.take(name) {
            *field = read(value, &self.at.member(name))?;
        }
        Ok(())
    }
}

/// "one of `a`, `b`, `c`", as serde lists expected names.
struct OneOf<'a>(&'a [&'a str]);

impl Display for OneOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => f.write_str("no fields"),
            [only] => write!(f, "`{only}`"),
            [first, rest @ ..] => {
                write!(f, "one of `{first}`")?;
                rest.iter().try_for_each(|name| write!(f, ", `{name}`"))
            }
        }
    }
}

/// A string.
pub fn string(value: Json, at: &At<'_>) -> Result<String, Invalid> {
    match value {
        Json::String(text) => Ok(text),
        other => Err(at.wrong_type(&other, "a string")),
    }
}

/// A string, or nothing for `null`.
pub fn optional_string(value: Json, at: &At<'_>) -> Result<Option<String>, Invalid> {
    match value {
        Json::Null => Ok(None),
        value => string(value, at).map(Some),
    }
}

/// A boolean.
pub fn boolean(value: Json, at: &At<'_>) -> Result<bool, Invalid> {
    match value {
        Json::Bool(flag) => Ok(flag),
        other => Err(at.wrong_type(&other, "a boolean")),
    }
}

/// An unsigned integer no greater than `max` (`what` names its type, `u16` or `u64`).
pub fn unsigned(value: Json, at: &At<'_>, max: u64, what: &str) -> Result<u64, Invalid> {
    match value {
        Json::Unsigned(number) if number <= max => Ok(number),
        Json::Unsigned(_) | Json::Negative(_) => Err(at.invalid(format_args!(
            "invalid value: {}, expected {what}",
            value.kind()
        ))),
        other => Err(at.wrong_type(&other, what)),
    }
}

/// An array, each item read by `item`.
pub fn array<T>(
    value: Json,
    at: &At<'_>,
    mut item: impl FnMut(Json, &At<'_>) -> Result<T, Invalid>,
) -> Result<Vec<T>, Invalid> {
    let Json::Array(items) = value else {
        return Err(at.wrong_type(&value, "a sequence"));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, value)| item(value, &at.index(index)))
        .collect()
}

/// A string naming one of `variants` (name, value).
pub fn one_of<T: Copy>(
    value: Json,
    at: &At<'_>,
    variants: &[(&'static str, T)],
) -> Result<T, Invalid> {
    let names = || -> Vec<&str> { variants.iter().map(|(name, _)| *name).collect() };
    let Json::String(name) = value else {
        return Err(at.wrong_type(&value, &format!("{}", OneOf(&names()))));
    };
    match variants.iter().find(|(variant, _)| *variant == name) {
        Some((_, value)) => Ok(*value),
        None => Err(at.invalid(format_args!(
            "unknown variant `{name}`, expected {}",
            OneOf(&names())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Json {
        Json::parse(text).unwrap()
    }

    #[test]
    fn parses_every_kind_of_value_in_document_order() {
        assert_eq!(
            parse(r#" {"b": [null, true, 0, -1, 1.5, 18446744073709551615], "a": "x\u00e9"} "#),
            Json::Object(vec![
                (
                    "b".into(),
                    Json::Array(vec![
                        Json::Null,
                        Json::Bool(true),
                        Json::Unsigned(0),
                        Json::Negative(-1),
                        Json::Float(1.5),
                        Json::Unsigned(u64::MAX),
                    ])
                ),
                ("a".into(), Json::String("xé".into())),
            ])
        );
    }

    #[test]
    fn a_repeated_member_and_bad_syntax_are_refused_with_their_position() {
        let error = |text: &str| Json::parse(text).unwrap_err().to_string();
        assert_eq!(
            error("{\n \"a\": 1,\n \"a\": 2}"),
            "duplicate field `a` at line 3 column 4"
        );
        // Nested objects are checked too; equal names in different objects are fine.
        assert_eq!(
            error(r#"{"a": {"b": 1, "b": 1}}"#),
            "duplicate field `b` at line 1 column 18"
        );
        assert!(Json::parse(r#"{"a": {"b": 1}, "b": {"a": 1}}"#).is_ok());
        assert_eq!(
            error("{ not json"),
            "key must be a string at line 1 column 3"
        );
        assert_eq!(error("[1] 2"), "trailing characters at line 1 column 5");
    }

    #[test]
    fn paths_name_members_and_positions() {
        let root = At::ROOT;
        let requests = root.member("token-requests");
        let refresh = requests.member("refresh");
        let params = refresh.member("params");
        let first = params.index(0);
        let name = first.member("name");
        assert_eq!(name.to_string(), "token-requests.refresh.params[0].name");
        assert_eq!(root.index(2).to_string(), "[2]");
        assert_eq!(root.to_string(), "");
        assert_eq!(root.invalid("bad").0, "bad");
        assert_eq!(root.member("a").invalid("bad").0, "`a`: bad");
    }

    #[test]
    fn readers_refuse_the_wrong_type_in_serdes_words() {
        let root = At::ROOT;
        let at = root.member("x");
        let message = |result: Result<(), Invalid>| result.unwrap_err().0;
        assert_eq!(
            message(string(parse("5"), &at).map(drop)),
            "`x`: invalid type: integer `5`, expected a string"
        );
        assert_eq!(
            message(string(parse("-5"), &at).map(drop)),
            "`x`: invalid type: integer `-5`, expected a string"
        );
        assert_eq!(
            message(string(parse("1.5"), &at).map(drop)),
            "`x`: invalid type: floating point `1.5`, expected a string"
        );
        assert_eq!(
            message(boolean(parse(r#""yes""#), &at).map(drop)),
            "`x`: invalid type: string \"yes\", expected a boolean"
        );
        assert_eq!(
            message(string(parse("[]"), &at).map(drop)),
            "`x`: invalid type: sequence, expected a string"
        );
        assert_eq!(
            message(array(parse("{}"), &at, string).map(drop)),
            "`x`: invalid type: map, expected a sequence"
        );
        assert_eq!(
            message(array(parse(r#"["a", null]"#), &at, string).map(drop)),
            "`x[1]`: invalid type: null, expected a string"
        );
        assert_eq!(optional_string(parse("null"), &at), Ok(None));
        assert_eq!(optional_string(parse(r#""a""#), &at), Ok(Some("a".into())));
        assert_eq!(
            unsigned(parse("65535"), &at, u16::MAX.into(), "u16"),
            Ok(65535)
        );
        assert_eq!(
            message(unsigned(parse("65536"), &at, u16::MAX.into(), "u16").map(drop)),
            "`x`: invalid value: integer `65536`, expected u16"
        );
        assert_eq!(
            message(unsigned(parse("-1"), &at, u64::MAX, "u64").map(drop)),
            "`x`: invalid value: integer `-1`, expected u64"
        );
        assert_eq!(
            message(unsigned(parse("true"), &at, u64::MAX, "u64").map(drop)),
            "`x`: invalid type: boolean `true`, expected u64"
        );
    }

    #[test]
    fn enums_and_objects_name_what_they_accept() {
        let root = At::ROOT;
        let at = root.member("pkce");
        let variants = [("s256", 1), ("plain", 2)];
        assert_eq!(one_of(parse(r#""plain""#), &at, &variants), Ok(2));
        assert_eq!(
            one_of(parse(r#""md5""#), &at, &variants).unwrap_err().0,
            "`pkce`: unknown variant `md5`, expected one of `s256`, `plain`"
        );
        assert_eq!(
            one_of(parse("7"), &at, &variants).unwrap_err().0,
            "`pkce`: invalid type: integer `7`, expected one of `s256`, `plain`"
        );

        const NAMES: &[&str] = &["name", "value"];
        let mut object = Object::new(
            parse(r#"{"value": "v"}"#),
            root.member("kv"),
            "an object",
            NAMES,
        )
        .unwrap();
        assert_eq!(object.take("value"), Some(Json::String("v".into())));
        assert_eq!(object.take("value"), None);
        assert_eq!(
            object.required("name", string).unwrap_err().0,
            "`kv`: missing field `name`"
        );
        let mut object = Object::new(
            parse(r#"{"name": 5}"#),
            root.member("kv"),
            "an object",
            NAMES,
        )
        .unwrap();
        let mut value = String::from("default");
        assert_eq!(object.read_into("value", &mut value, string), Ok(()));
        assert_eq!(value, "default");
        assert_eq!(
            object.read_into("name", &mut value, string).unwrap_err().0,
            "`kv.name`: invalid type: integer `5`, expected a string"
        );
        let refused = |text: &str| {
            Object::new(parse(text), root.member("kv"), "an object", NAMES)
                .err()
                .unwrap()
                .0
        };
        assert_eq!(
            refused(r#"{"name": "n", "colour": 1}"#),
            "`kv.colour`: unknown field `colour`, expected one of `name`, `value`"
        );
        assert_eq!(
            refused(r#""text""#),
            "`kv`: invalid type: string \"text\", expected an object"
        );
        // An array stands for the members in order, as serde's derived deserialisers read it.
        let mut object =
            Object::new(parse(r#"["n"]"#), root.member("kv"), "an object", NAMES).unwrap();
        assert_eq!(object.take("name"), Some(Json::String("n".into())));
        assert_eq!(object.take("value"), None);
        assert_eq!(
            refused(r#"["n", "v", "w"]"#),
            "`kv`: invalid length 3, expected an object of at most 2 values"
        );
    }
}
