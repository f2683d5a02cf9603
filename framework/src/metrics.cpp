// Metrics: atomics for counters, per-thread shards for the per-method maps.
#include <algorithm>
#include <limits>
#include <memory>

#include "sdmp/framework/metrics.hpp"

namespace sdmp {

namespace {
std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
    return a > std::numeric_limits<std::uint64_t>::max() - b
               ? std::numeric_limits<std::uint64_t>::max()
               : a + b;
}
}  // namespace

void LatencyHistogram::add(std::chrono::nanoseconds latency) noexcept {
    const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::microseconds>(latency).count()));
    const auto it = std::lower_bound(k_bounds_us.begin(), k_bounds_us.end(), us);
    const auto bucket = static_cast<std::size_t>(it - k_bounds_us.begin());
    counts[bucket] = saturating_add(counts[bucket], 1);
    count = saturating_add(count, 1);
    sum_us = saturating_add(sum_us, us);
    max_us = std::max(max_us, us);
}

std::uint64_t LatencyHistogram::quantile_upper_bound_us(double q) const noexcept {
    if (count == 0)
        return 0;
    const double target = q * static_cast<double>(count);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < k_bucket_count; ++i) {
        seen += counts[i];
        if (static_cast<double>(seen) >= target) {
            return i < k_bounds_us.size() ? k_bounds_us[i] : max_us;
        }
    }
    return max_us;
}

std::uint64_t MethodStats::total() const noexcept {
    std::uint64_t sum = 0;
    for (const std::uint64_t n : by_status)
        sum = saturating_add(sum, n);
    return sum;
}

void Metrics::add(std::atomic<std::uint64_t>& counter, std::uint64_t n) noexcept {
    std::uint64_t current = counter.load(std::memory_order_relaxed);
    while (!counter.compare_exchange_weak(current, saturating_add(current, n),
                                          std::memory_order_relaxed)) {
    }
}

void Metrics::handshake_refused(std::string_view reason) {
    const std::lock_guard lock(mutex_);
    auto it = refused_.find(reason);
    if (it == refused_.end())
        it = refused_.emplace(std::string(reason), 0).first;
    it->second = saturating_add(it->second, 1);
}

void Metrics::session_opened() noexcept {
    sessions_open_.fetch_add(1, std::memory_order_relaxed);
    add(sessions_total_);
}

void Metrics::session_closed() noexcept {
    sessions_open_.fetch_sub(1, std::memory_order_relaxed);
}

void Metrics::bytes_received(std::size_t bytes, std::size_t records) noexcept {
    if (bytes != 0)
        add(bytes_in_, bytes);
    if (records != 0)
        add(records_in_, records);
}

void Metrics::bytes_sent(std::size_t bytes, std::size_t records) noexcept {
    if (bytes != 0)
        add(bytes_out_, bytes);
    if (records != 0)
        add(records_out_, records);
}

namespace {
void record(std::map<std::string, MethodStats, std::less<>>& map, std::string_view method,
            protocol::Status status, std::chrono::nanoseconds latency) {
    auto it = map.find(method);
    if (it == map.end())
        it = map.emplace(std::string(method), MethodStats{}).first;
    auto& n = it->second.by_status[static_cast<std::size_t>(status)];
    n = saturating_add(n, 1);
    it->second.latency.add(latency);
}
}  // namespace

Metrics::~Metrics() {
    for (auto& slot : shards_)
        delete slot.load(std::memory_order_relaxed);
}

Metrics::MethodShard& Metrics::shard() {
    // Each thread keeps one slot for its life; threads beyond k_shards share slots.
    static std::atomic<std::size_t> next_slot{0};
    thread_local const std::size_t slot =
        next_slot.fetch_add(1, std::memory_order_relaxed) % k_shards;
    std::atomic<MethodShard*>& entry = shards_[slot];
    MethodShard* existing = entry.load(std::memory_order_acquire);
    if (existing != nullptr)
        return *existing;
    auto made = std::make_unique<MethodShard>();
    if (entry.compare_exchange_strong(existing, made.get(), std::memory_order_acq_rel))
        return *made.release();
    return *existing;  // another thread of the same slot made it first
}

void Metrics::request_served(std::string_view method, protocol::Status status,
                             std::chrono::nanoseconds latency) {
    MethodShard& s = shard();
    const std::lock_guard lock(s.mutex);
    record(s.served, method, status, latency);
}

void Metrics::call_completed(std::string_view method, protocol::Status status,
                             std::chrono::nanoseconds latency) {
    MethodShard& s = shard();
    const std::lock_guard lock(s.mutex);
    record(s.called, method, status, latency);
}

namespace {
void merge(LatencyHistogram& into, const LatencyHistogram& from) noexcept {
    for (std::size_t i = 0; i < LatencyHistogram::k_bucket_count; ++i)
        into.counts[i] = saturating_add(into.counts[i], from.counts[i]);
    into.count = saturating_add(into.count, from.count);
    into.sum_us = saturating_add(into.sum_us, from.sum_us);
    into.max_us = std::max(into.max_us, from.max_us);
}

void merge(std::map<std::string, MethodStats, std::less<>>& into,
           const std::map<std::string, MethodStats, std::less<>>& from) {
    for (const auto& [method, stats] : from) {
        MethodStats& target = into[method];
        for (std::size_t i = 0; i < stats.by_status.size(); ++i)
            target.by_status[i] = saturating_add(target.by_status[i], stats.by_status[i]);
        merge(target.latency, stats.latency);
    }
}
}  // namespace

MetricsSnapshot Metrics::snapshot() const {
    MetricsSnapshot s;
    const auto get = [](const std::atomic<std::uint64_t>& a) {
        return a.load(std::memory_order_relaxed);
    };
    s.handshakes_completed = get(handshakes_completed_);
    s.handshakes_refused_by_peer = get(handshakes_refused_by_peer_);
    s.handshakes_failed = get(handshakes_failed_);
    s.sessions_open = get(sessions_open_);
    s.sessions_total = get(sessions_total_);
    s.bytes_in = get(bytes_in_);
    s.bytes_out = get(bytes_out_);
    s.records_in = get(records_in_);
    s.records_out = get(records_out_);
    s.messages_in = get(messages_in_);
    s.messages_out = get(messages_out_);
    s.notifications_in = get(notifications_in_);
    s.notifications_out = get(notifications_out_);
    s.notifications_dropped = get(notifications_dropped_);
    s.send_queue_waits = get(send_queue_waits_);
    {
        const std::lock_guard lock(mutex_);
        s.handshakes_refused = refused_;
    }
    for (const auto& slot : shards_) {
        const MethodShard* shard = slot.load(std::memory_order_acquire);
        if (shard == nullptr)
            continue;
        const std::lock_guard lock(shard->mutex);
        merge(s.served, shard->served);
        merge(s.called, shard->called);
    }
    return s;
}

}  // namespace sdmp
