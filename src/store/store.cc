#include "store/store.h"

#include <algorithm>

#include "core/json.h"

namespace agentgate::store {

namespace {

constexpr std::size_t Limit(CheckRecord::Field field) {
  switch (field) {
    case CheckRecord::kAgentId: return 64;
    case CheckRecord::kAction: return 256;
    case CheckRecord::kUserAgent: return 256;
    default: return CheckRecord::kMaxFieldBytes;
  }
}

}  // namespace

void CheckRecord::Assign(std::string_view agent_id, std::string_view action,
                         std::string_view reason, std::string_view request_id, std::string_view ip,
                         std::string_view user_agent, std::string_view actor_id,
                         std::string_view user_id) {
  const std::array<std::string_view, kFieldCount> values = {
      agent_id, action, reason, request_id, ip, user_agent, actor_id, user_id};
  std::size_t total = 0;
  std::array<std::size_t, kFieldCount> sizes{};
  for (std::size_t i = 0; i < kFieldCount; ++i) {
    sizes[i] = std::min(values[i].size(), Limit(static_cast<Field>(i)));
    total += sizes[i];
  }
  text_.clear();
  text_.reserve(total);
  for (std::size_t i = 0; i < kFieldCount; ++i) {
    text_.append(values[i].substr(0, sizes[i]));
    ends_[i] = static_cast<std::uint16_t>(text_.size());
  }
}

void CheckRecord::Set(Field field, std::string_view value) {
  std::array<std::string, kFieldCount> values;
  for (std::size_t i = 0; i < kFieldCount; ++i) values[i] = Get(static_cast<Field>(i));
  values[field] = value;
  Assign(values[0], values[1], values[2], values[3], values[4], values[5], values[6], values[7]);
}

void CheckRecord::Repair() {
  std::array<std::string, kFieldCount> values;
  bool changed = false;
  for (std::size_t i = 0; i < kFieldCount; ++i) {
    values[i] = Get(static_cast<Field>(i));
    MakeValidUtf8(values[i], Limit(static_cast<Field>(i)));  // copies only to mend
    changed = changed || values[i] != Get(static_cast<Field>(i));
  }
  if (changed) {
    Assign(values[0], values[1], values[2], values[3], values[4], values[5], values[6], values[7]);
  }
}

}  // namespace agentgate::store
