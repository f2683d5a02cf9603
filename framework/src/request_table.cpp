#include "detail/request_table.hpp"

#include <algorithm>

namespace sdmp::detail {

RequestTable::Admission RequestTable::admit_request(std::uint64_t id, std::size_t size,
                                                    bool has_handler, bool accepting) noexcept {
    // Seen, whatever becomes of it: a goaway covers every id the peer may wait for.
    highest_ = std::max(highest_, id);
    if (by_id_.contains(id))
        return Admission::duplicate_id;
    if (!accepting)
        return Admission::shutting_down;
    if (size > limits_.max_message_size)
        return Admission::too_large;
    if (!has_handler)
        return Admission::unknown_method;
    if (count_ >= limits_.max_in_flight)
        return Admission::overloaded;
    return Admission::accept;
}

bool RequestTable::admit_notification(std::size_t size, bool has_handler,
                                      bool accepting) const noexcept {
    return size <= limits_.max_message_size && has_handler && accepting &&
           count_ < limits_.max_in_flight;
}

void RequestTable::add(Entry& entry) {
    if (entry.request_id != 0)
        by_id_.emplace(entry.request_id, &entry);
    entry.prev = nullptr;
    entry.next = head_;
    if (head_ != nullptr)
        head_->prev = &entry;
    head_ = &entry;
    entry.listed = true;
    ++count_;
}

void RequestTable::remove(Entry& entry) noexcept {
    if (!entry.listed)
        return;
    if (entry.request_id != 0)
        by_id_.erase(entry.request_id);
    if (entry.prev != nullptr) {
        entry.prev->next = entry.next;
    } else {
        head_ = entry.next;
    }
    if (entry.next != nullptr)
        entry.next->prev = entry.prev;
    entry.prev = entry.next = nullptr;
    entry.listed = false;
    --count_;
}

RequestTable::Entry* RequestTable::find(std::uint64_t id) const noexcept {
    const auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second;
}

}  // namespace sdmp::detail
