// Reply, Context and CallOptions::inherit: plain data, no Asio.
#include <algorithm>

#include "sdmp/framework/context.hpp"
#include "sdmp/framework/reply.hpp"

namespace sdmp {

namespace {
std::string_view find_in(const Metadata& metadata, std::string_view key) noexcept {
    const auto it = std::find_if(metadata.begin(), metadata.end(),
                                 [&](const auto& entry) { return entry.first == key; });
    return it == metadata.end() ? std::string_view{} : std::string_view(it->second);
}
}  // namespace

Reply Reply::ok(Bytes body, Metadata metadata) {
    return Reply{Status::ok, std::move(body), std::move(metadata)};
}

Reply Reply::ok(std::string_view text, Metadata metadata) {
    return Reply{Status::ok, bytes_of(text), std::move(metadata)};
}

Reply Reply::error(Status status, std::string_view message) {
    return Reply{status, bytes_of(message), {}};
}

std::string_view Reply::find_metadata(std::string_view key) const noexcept {
    return find_in(metadata, key);
}

Context::Context(std::shared_ptr<detail::SessionImpl> session, std::shared_ptr<const PeerInfo> peer,
                 std::uint64_t request_id, std::string method, Metadata metadata,
                 std::optional<Clock::time_point> deadline)
    : session_(std::move(session)),
      peer_(std::move(peer)),
      request_id_(request_id),
      method_(std::move(method)),
      metadata_(std::move(metadata)),
      deadline_(deadline) {}

CallOptions& CallOptions::inherit(const Context& parent) {
    // Only the deadline travels: metadata and compression are the callee's business, and a
    // handler that wants to forward them does so explicitly.
    const auto inherited = parent.deadline();
    if (inherited && (!parent_deadline || *inherited < *parent_deadline))
        parent_deadline = inherited;
    return *this;
}

std::string_view Context::find_metadata(std::string_view key) const noexcept {
    return find_in(metadata_, key);
}

std::optional<std::chrono::milliseconds> Context::remaining() const noexcept {
    if (!deadline_)
        return std::nullopt;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_ - Clock::now());
    return std::max(left, std::chrono::milliseconds{0});
}

void Reply::ensure_ok() const {
    if (!is_ok())
        throw StatusError(status, std::string(text()));
}

}  // namespace sdmp
