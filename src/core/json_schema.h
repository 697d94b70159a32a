// Validation of JSON values against the part of JSON Schema (2020-12) that tool and action input
// schemas use: type (incl. arrays of types and "integer"), enum, const, properties, required,
// additionalProperties (bool or schema), minProperties/maxProperties, items, minItems/maxItems,
// uniqueItems, minimum/maximum, exclusiveMinimum/exclusiveMaximum, multipleOf,
// minLength/maxLength (in characters), pattern (ECMAScript, unanchored), allOf/anyOf/oneOf/not.
// Keywords it does not know ($schema, title, description, format, examples, ...) are
// annotations and are ignored; `$ref` is not followed (schemas given here are self-contained).
//
// Pure functions, safe from any thread. Errors are values.
#pragma once

#include <optional>
#include <string>

#include "core/json.h"

namespace agentgate {

struct SchemaViolation {
  std::string pointer;  // JSON Pointer to the offending value, "" for the root; e.g. "/items/2"
  std::string message;  // e.g. "must be a string", written for the person reading the error
};

// The first violation found, or nullopt when `value` conforms. A schema that is not an object
// (or `true`) accepts everything; `false` accepts nothing.
std::optional<SchemaViolation> ValidateAgainstSchema(const json::value& schema,
                                                     const json::value& value);

// The field named by a pointer, for messages: "/scope/max_amount" -> "scope.max_amount",
// "" -> "(the input)".
std::string PointerToFieldName(const std::string& pointer);

}  // namespace agentgate
