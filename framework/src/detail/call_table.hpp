// Our calls awaiting their answers (protocol.md §6.2): ids allocated in order and never reused
// (the counter stops rather than wrap), each answer matched to its call once, and the peer's
// goaway, which says which of them it will not handle. Calls above its last id are certainly
// unhandled, so their callers learn `shutting_down` and may retry elsewhere.
//
// Sans-IO: the table holds the session's handles to its calls (`Call`, e.g. a shared_ptr) and
// hands them back; completing them is the session's business. Header-only because it is a
// template; the logic is the few lines below.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory_resource>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sdmp::detail {

template <typename Call>
class CallTable {
  public:
    // Nodes come from `pool` (one insert and one erase per call), not from malloc. `ids_used`:
    // the ids already spent (tests start near the end of the id space).
    explicit CallTable(std::pmr::memory_resource* pool, std::uint64_t ids_used = 0)
        : calls_(pool), next_id_(ids_used) {}

    // The id of the next call; nullopt once every id has been used (2^64 - 1 calls: never in
    // practice, but an id must never come round again while an old call may still be answered).
    std::optional<std::uint64_t> next_id() noexcept {
        if (next_id_ == std::numeric_limits<std::uint64_t>::max())
            return std::nullopt;
        return ++next_id_;
    }

    void insert(std::uint64_t id, Call call) { calls_.emplace(id, std::move(call)); }

    // The call answered by `id`, out of the table; empty when there is none (it timed out or
    // was cancelled meanwhile, or the peer answered twice).
    Call take(std::uint64_t id) {
        const auto it = calls_.find(id);
        if (it == calls_.end())
            return Call{};
        Call call = std::move(it->second);
        calls_.erase(it);
        return call;
    }

    // Takes `id` out only if it still holds `call` (a finishing call leaving the table).
    template <typename Pointer>
    Call take_if(std::uint64_t id, const Pointer* call) {
        const auto it = calls_.find(id);
        if (it == calls_.end() || &*it->second != call)
            return Call{};
        Call out = std::move(it->second);
        calls_.erase(it);
        return out;
    }

    // The peer's goaway: keeps the lowest last id of every goaway it sent (a later one cannot
    // take back what an earlier one refused) and takes out every call above it.
    std::vector<Call> on_goaway(std::uint64_t last_request_id) {
        peer_last_ = peer_last_ ? std::min(*peer_last_, last_request_id) : last_request_id;
        std::vector<Call> refused;
        for (auto it = calls_.begin(); it != calls_.end();) {
            if (it->first > *peer_last_) {
                refused.push_back(std::move(it->second));
                it = calls_.erase(it);
            } else {
                ++it;
            }
        }
        return refused;
    }

    // Whether the peer said it will handle no call with this id (it sent goaway below it).
    bool refused(std::uint64_t id) const noexcept { return peer_last_ && id > *peer_last_; }
    bool peer_went_away() const noexcept { return peer_last_.has_value(); }

    // Every pending call, the table emptied (the session is ending).
    std::vector<std::pair<std::uint64_t, Call>> take_all() {
        std::vector<std::pair<std::uint64_t, Call>> all(std::make_move_iterator(calls_.begin()),
                                                        std::make_move_iterator(calls_.end()));
        calls_.clear();
        return all;
    }

    std::size_t size() const noexcept { return calls_.size(); }
    bool empty() const noexcept { return calls_.empty(); }

  private:
    std::pmr::unordered_map<std::uint64_t, Call> calls_;
    std::uint64_t next_id_;
    std::optional<std::uint64_t> peer_last_;
};

}  // namespace sdmp::detail
