//! One item as the checking pass read it — its elements, attributes and text in a flat list — and the serde
//! deserializer that reads the item's structs from that list, so an item's XML is parsed once, not parsed, copied
//! and parsed again.
//!
//! The mapping is quick-xml's: an element is a map whose keys are `@` and an attribute's name, `$text` for its
//! text, and its child elements' local names; a field of `Vec` (or of any sequence) takes the consecutive children
//! of its name; text is its runs of text, references and CDATA joined, trimmed of XML white space, and left out when
//! only white space.

use quick_xml::DeError;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};

/// A range of [`Tape::text`]: `u32` keeps a node at 12 bytes (an item is at most a few MiB).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

#[derive(Debug, Clone, Copy)]
enum Node {
    /// An element: its local name, and the index just past its last descendant.
    Element { name: Span, end: u32 },
    /// An attribute of the element just before: its key (`@` then its qualified name) and its value.
    Attribute { key: Span, value: Span },
    /// Text of the enclosing element: a run of text, references and CDATA, trimmed.
    Text(Span),
}

/// An item recorded while it is read and checked; [`Tape::deserialize`] reads it with serde.
#[derive(Debug, Default)]
pub(crate) struct Tape {
    text: String,
    nodes: Vec<Node>,
    /// The elements opened and not yet closed while recording.
    open: Vec<u32>,
    /// Where the text run being recorded starts in `text`.
    run: Option<u32>,
}

/// White space as XML defines it (and quick-xml trims).
fn is_xml_space(character: char) -> bool {
    matches!(character, ' ' | '\t' | '\r' | '\n')
}

impl Tape {
    /// Forgets the item recorded, keeping the memory.
    pub(crate) fn clear(&mut self) {
        self.text.clear();
        self.nodes.clear();
        self.open.clear();
        self.run = None;
    }

    /// About how many bytes the recording holds, for the item size limit.
    pub(crate) fn size(&self) -> usize {
        self.text.len() + self.nodes.len() * core::mem::size_of::<Node>()
    }

    /// Opens an element named `local_name`; its attributes follow ([`Self::attribute`]).
    pub(crate) fn start(&mut self, local_name: &str) {
        self.end_text_run();
        let name = self.push_text(&[local_name]);
        self.open.push(self.index());
        self.nodes.push(Node::Element { name, end: 0 });
    }

    /// An attribute (qualified name, unescaped value) of the element just opened.
    pub(crate) fn attribute(&mut self, name: &str, value: &str) {
        debug_assert!(
            self.run.is_none(),
            "attributes come right after their element"
        );
        let key = self.push_text(&["@", name]);
        let value = self.push_text(&[value]);
        self.nodes.push(Node::Attribute { key, value });
    }

    /// Appends unescaped text to the open element's current run.
    pub(crate) fn text(&mut self, text: &str) {
        if self.run.is_none() {
            self.run = Some(self.offset());
        }
        self.text.push_str(text);
    }

    /// Closes the innermost open element.
    pub(crate) fn end(&mut self) {
        self.end_text_run();
        let end = self.index();
        if let Some(open) = self.open.pop()
            && let Some(Node::Element { end: slot, .. }) = self.nodes.get_mut(open as usize)
        {
            *slot = end;
        }
    }

    /// Reads the item (the first element recorded, closed) as a `T`.
    pub(crate) fn deserialize<'de, T: Deserialize<'de>>(&'de self) -> Result<T, DeError> {
        debug_assert!(self.open.is_empty(), "an item is read once it is closed");
        if !matches!(self.nodes.first(), Some(Node::Element { .. })) {
            return Err(DeError::Custom("no element recorded".to_owned()));
        }
        T::deserialize(ElementDeserializer {
            tape: self,
            index: 0,
        })
    }

    fn end_text_run(&mut self) {
        let Some(start) = self.run.take() else {
            return;
        };
        let run = &self.text[start as usize..];
        let leading = run.len() - run.trim_start_matches(is_xml_space).len();
        let trimmed = run.trim_matches(is_xml_space).len();
        if trimmed == 0 {
            self.text.truncate(start as usize);
            return;
        }
        let start = start + leading as u32;
        self.nodes.push(Node::Text(Span {
            start,
            end: start + trimmed as u32,
        }));
    }

    fn push_text(&mut self, parts: &[&str]) -> Span {
        let start = self.offset();
        for part in parts {
            self.text.push_str(part);
        }
        Span {
            start,
            end: self.offset(),
        }
    }

    fn offset(&self) -> u32 {
        u32::try_from(self.text.len()).unwrap_or(u32::MAX)
    }

    fn index(&self) -> u32 {
        u32::try_from(self.nodes.len()).unwrap_or(u32::MAX)
    }

    fn str(&self, span: Span) -> &str {
        self.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
    }

    fn node(&self, index: usize) -> Option<Node> {
        self.nodes.get(index).copied()
    }

    /// The index past element `index`'s last descendant.
    fn element_end(&self, index: usize) -> usize {
        match self.node(index) {
            Some(Node::Element { end, .. }) => (end as usize).max(index + 1),
            _ => index + 1,
        }
    }

    /// The local name of element `index`.
    fn element_name(&self, index: usize) -> Option<&str> {
        match self.node(index) {
            Some(Node::Element { name, .. }) => Some(self.str(name)),
            _ => None,
        }
    }
}

/// One element, as a map (struct), a string (its text) or an option (always present).
struct ElementDeserializer<'de> {
    tape: &'de Tape,
    index: usize,
}

impl<'de> ElementDeserializer<'de> {
    fn children(&self) -> ElementMap<'de> {
        ElementMap {
            tape: self.tape,
            cursor: self.index + 1,
            end: self.tape.element_end(self.index),
            value: None,
        }
    }

    /// The element's text: refused if it has child elements (an element where text was expected).
    fn text(&self) -> Result<&'de str, DeError> {
        let mut text: Option<&'de str> = None;
        for index in self.index + 1..self.tape.element_end(self.index) {
            match self.tape.node(index) {
                Some(Node::Element { name, .. }) => {
                    return Err(DeError::Custom(format!(
                        "expected text, found <{}>",
                        self.tape.str(name)
                    )));
                }
                Some(Node::Text(span)) if text.is_none() => text = Some(self.tape.str(span)),
                Some(Node::Text(_)) => {
                    return Err(DeError::Custom("text split by elements".to_owned()));
                }
                _ => {}
            }
        }
        Ok(text.unwrap_or_default())
    }

    fn is_leaf(&self) -> bool {
        let children = self.index + 1..self.tape.element_end(self.index);
        !children.into_iter().any(|index| {
            matches!(
                self.tape.node(index),
                Some(Node::Element { .. } | Node::Attribute { .. })
            )
        })
    }
}

impl<'de> de::Deserializer<'de> for ElementDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_leaf() {
            visitor.visit_borrowed_str(self.text()?)
        } else {
            visitor.visit_map(self.children())
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_str(self.text()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(self.children())
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(self.children())
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, DeError> {
        Err(DeError::Custom(format!("enum {name} is not read from XML")))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct seq tuple
        tuple_struct identifier
    }
}

/// What the key just handed out refers to.
#[derive(Clone, Copy)]
enum Value {
    /// An attribute's value or the element's text.
    Text(Span),
    /// The child element at this index (the cursor is already past it).
    Child(usize),
}

/// An element's attributes, text and children, in document order.
struct ElementMap<'de> {
    tape: &'de Tape,
    cursor: usize,
    end: usize,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for ElementMap<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        if self.cursor >= self.end {
            return Ok(None);
        }
        let Some(node) = self.tape.node(self.cursor) else {
            return Ok(None);
        };
        let (key, value) = match node {
            Node::Attribute { key, value } => {
                self.cursor += 1;
                (self.tape.str(key), Value::Text(value))
            }
            Node::Text(span) => {
                self.cursor += 1;
                ("$text", Value::Text(span))
            }
            Node::Element { name, .. } => {
                let index = self.cursor;
                self.cursor = self.tape.element_end(index);
                (self.tape.str(name), Value::Child(index))
            }
        };
        self.value = Some(value);
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(Value::Text(span)) => seed.deserialize(TextDeserializer(self.tape.str(span))),
            Some(Value::Child(index)) => seed.deserialize(FieldDeserializer { map: self, index }),
            None => Err(DeError::Custom("a value asked before its key".to_owned())),
        }
    }
}

/// The value of a child element's key: the element itself, or, asked for a sequence, it and the siblings of its
/// name that follow it.
struct FieldDeserializer<'m, 'de> {
    map: &'m mut ElementMap<'de>,
    index: usize,
}

impl<'de> FieldDeserializer<'_, 'de> {
    fn element(&self) -> ElementDeserializer<'de> {
        ElementDeserializer {
            tape: self.map.tape,
            index: self.index,
        }
    }
}

impl<'de> de::Deserializer<'de> for FieldDeserializer<'_, 'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.element().deserialize_any(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let name = self.map.tape.element_name(self.index);
        visitor.visit_seq(Siblings {
            map: self.map,
            name,
            next: Some(self.index),
        })
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.element().deserialize_str(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.element().deserialize_str(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.element().deserialize_map(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.element().deserialize_struct(name, fields, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.element().deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct tuple
        tuple_struct identifier
    }
}

/// Consecutive children of one name, for a sequence field; moves the map's cursor past each one read.
struct Siblings<'m, 'de> {
    map: &'m mut ElementMap<'de>,
    name: Option<&'de str>,
    next: Option<usize>,
}

impl<'de> SeqAccess<'de> for Siblings<'_, 'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(index) = self.next.take() else {
            return Ok(None);
        };
        let tape = self.map.tape;
        let after = tape.element_end(index);
        self.map.cursor = self.map.cursor.max(after);
        if after < self.map.end
            && tape
                .element_name(after)
                .is_some_and(|name| Some(name) == self.name)
        {
            self.next = Some(after);
        }
        seed.deserialize(ElementDeserializer { tape, index })
            .map(Some)
    }
}

/// An attribute's value or an element's text.
struct TextDeserializer<'de>(&'de str);

impl<'de> de::Deserializer<'de> for TextDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq
        tuple tuple_struct map struct enum identifier
    }
}
