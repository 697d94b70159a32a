// Query parameters shared by the list endpoints under /v1: limit and cursor.
//
// Cursors are "<prefix><n>" where n is the position of the last item of the previous page; they
// are opaque to clients, who pass next_cursor back unchanged.
#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/result.h"
#include "http/message.h"

namespace agentgate::api {

// ?limit= as a whole number in [1, max], or fallback when absent.
inline Result<int> ParseLimit(const http::Query& query, int fallback, int max) {
  auto limit = query.Get("limit");
  if (!limit) return fallback;
  int n = 0;
  auto [p, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), n);
  if (ec != std::errc() || p != limit->data() + limit->size() || n < 1 || n > max) {
    return MakeError(Code::kInvalidField,
                     "limit must be a whole number from 1 to " + std::to_string(max));
  }
  return n;
}

// ?cursor= as the position to continue before; "no cursor" is the largest position.
inline Result<std::int64_t> ParseCursor(const http::Query& query, std::string_view prefix) {
  auto cursor = query.Get("cursor");
  if (!cursor || cursor->empty()) return std::numeric_limits<std::int64_t>::max();
  std::string_view c = *cursor;
  if (c.substr(0, prefix.size()) == prefix) c.remove_prefix(prefix.size());
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(c.data(), c.data() + c.size(), n);
  if (ec != std::errc() || p != c.data() + c.size() || n < 1) {
    return MakeError(Code::kInvalidField, "cursor is not one this server gave out",
                     "Pass the next_cursor of the previous page unchanged.");
  }
  return n;
}

}  // namespace agentgate::api
