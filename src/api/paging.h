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
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/json.h"
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

// The integration engine's cursors: "<ms>.<id>", the sort key (a time, then the id) of the last
// item of the previous page.
inline Result<std::pair<std::int64_t, std::string>> ParseTimeCursor(std::string_view cursor) {
  std::size_t dot = cursor.find('.');
  std::int64_t at = -1;
  if (dot != std::string_view::npos) {
    auto [p, ec] = std::from_chars(cursor.data(), cursor.data() + dot, at);
    if (ec != std::errc() || p != cursor.data() + dot) at = -1;
  }
  if (at < 0 || dot + 1 >= cursor.size()) {
    return MakeError(Code::kInvalidField, "cursor is not one this server gave out",
                     "Pass the cursor of the previous page unchanged.");
  }
  return std::make_pair(at, std::string(cursor.substr(dot + 1)));
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

// A page of a list fetched with one item more than `limit` (which tells whether another page
// exists): {"data": [to_json(item)...], "next_cursor": "<prefix><position of the last>" | null}.
template <class Item, class ToJson, class PositionOf>
json::object PageJson(std::vector<Item>& items, int limit, std::string_view prefix, ToJson to_json,
                      PositionOf position_of) {
  bool more = static_cast<int>(items.size()) > limit;
  if (more) items.resize(static_cast<std::size_t>(limit));
  json::array data;
  for (const auto& item : items) data.push_back(to_json(item));
  json::object out;
  out["data"] = std::move(data);
  out["next_cursor"] =
      more ? json::value(std::string(prefix) + std::to_string(position_of(items.back())))
           : json::value(nullptr);
  return out;
}

}  // namespace agentgate::api
