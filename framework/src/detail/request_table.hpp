// The peer's requests and notifications in our hands (protocol.md §6.2, §6.3): whether each is
// admitted or answered at once, and which are still being handled, so that a cancel finds its
// request, the drain knows when the last one finished, and a closing session can cancel them
// all.
//
// Sans-IO: entries are the session's tasks, linked in through the Entry base; the table never
// owns or completes them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <unordered_map>

namespace sdmp::detail {

class RequestTable {
  public:
    // The table's hook in a task. request_id 0: a notification (protocol.md §6.2 ids start at 1).
    struct Entry {
        Entry() = default;
        Entry(const Entry&) = delete;
        Entry& operator=(const Entry&) = delete;
        std::uint64_t request_id = 0;

      private:
        friend class RequestTable;
        Entry* prev = nullptr;
        Entry* next = nullptr;
        bool listed = false;
    };

    // What becomes of a request that arrived, in the order the checks are made.
    enum class Admission {
        accept,
        duplicate_id,    // protocol.md §6.2: ids are unique among open calls; a protocol error
        shutting_down,   // we are draining or closing
        too_large,       // over our max_message_size (counted as the envelope)
        unknown_method,  // no handler
        overloaded,      // max_in_flight requests and notifications are in our hands
    };

    struct Limits {
        std::size_t max_in_flight = 0;
        std::size_t max_message_size = 0;
    };

    RequestTable(Limits limits, std::pmr::memory_resource* pool) : limits_(limits), by_id_(pool) {}

    // A request arrived (`size`: its envelope): the decision. Only `accept` must be followed
    // by add().
    Admission admit_request(std::uint64_t id, std::size_t size, bool has_handler,
                            bool accepting) noexcept;
    // A notification arrived: handled (then add()) or dropped. Notifications are not refused
    // by a goaway (protocol.md §6.6); `accepting` is false once no new work may start
    // (SessionLifecycle::accepts_new_work).
    bool admit_notification(std::size_t size, bool has_handler, bool accepting) const noexcept;

    void add(Entry& entry);
    void remove(Entry& entry) noexcept;
    // The request `id` being handled, if any (a cancel for an unknown id is ignored).
    Entry* find(std::uint64_t id) const noexcept;

    // Calls `visit(entry)` for every entry; `visit` must not add or remove entries.
    template <typename Visit>
    void for_each(Visit visit) const {
        for (Entry* entry = head_; entry != nullptr; entry = entry->next)
            visit(*entry);
    }

    std::size_t size() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    // The highest request id the peer used: our goaway's last id (protocol.md §6.2).
    std::uint64_t highest_request() const noexcept { return highest_; }

  private:
    Limits limits_;
    std::pmr::unordered_map<std::uint64_t, Entry*> by_id_;
    Entry* head_ = nullptr;
    std::size_t count_ = 0;
    std::uint64_t highest_ = 0;
};

}  // namespace sdmp::detail
