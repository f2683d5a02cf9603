// `grpc`: gRPC's C++ callback API with mutual TLS, one unary method Echo(bytes) -> bytes
// (echo.proto). Shared by systems/grpc.cpp (the system and its client) and
// systems/grpc_server.cpp (the server); built only when gRPC is installed (CMakeLists.txt).
//
// gRPC runs its own threads: its callbacks (client completions, server handlers) run there, never
// on the harness's io_contexts. A client completion is posted to the client executor, so the
// harness's threading contract (system.hpp) holds for everything the harness sees.
#pragma once

#include "../system.hpp"

#include <grpcpp/grpcpp.h>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace sdmp::bench::grpc_bench {

// Message-size limit on both ends, as the framing's k_max_body: gRPC's default receive limit is
// 4 MiB, which the 1 MiB messages of bulk_throughput would fit, but no system gets a limit the
// others do not have.
inline constexpr int k_max_message = 16 << 20;

// Counts gRPC's threads: those whose name differs from the process's. The harness's threads keep
// the process's name; gRPC names every thread it starts (grpc_core::Thread, pthread_setname_np).
// sample() reads /proc/self/task/*/comm (at most every 10 ms) and keeps the largest count seen
// and its breakdown by name. The watcher thread below is the system's own and not counted.
// Thread-safe.
class ThreadCensus {
  public:
    void sample();
    // {"max": N, "by_name": {"name": count, ...}} of the sample with the most threads.
    [[nodiscard]] nlohmann::ordered_json to_json() const;

  private:
    mutable std::mutex mutex_;
    std::chrono::steady_clock::time_point last_sample_{};
    std::size_t max_ = 0;
    std::map<std::string, std::size_t> by_name_;
};

// Awaits connectivity-state changes of channels. gRPC's C++ API reports them only through a
// completion queue (Channel::NotifyOnStateChange), so one thread of the system's own
// (named k_thread_name) waits on that queue and posts each change to the awaiting coroutine's
// executor. It sleeps except while channels connect or close.
class ConnectivityWatcher {
  public:
    static constexpr const char* k_thread_name = "sdmp-grpc-watch";

    ConnectivityWatcher();
    ~ConnectivityWatcher();
    ConnectivityWatcher(const ConnectivityWatcher&) = delete;
    ConnectivityWatcher& operator=(const ConnectivityWatcher&) = delete;

    // Completes with true once `channel`'s state is no longer `last`, with false at `deadline`.
    // The channel must stay alive until it completes.
    asio::awaitable<bool> changed(::grpc::Channel& channel, grpc_connectivity_state last,
                                  std::chrono::system_clock::time_point deadline);

  private:
    void run();

    ::grpc::CompletionQueue queue_;
    std::thread thread_;
};

// A failed call's status as an error code (category "grpc", value the status code), so that a
// request fails with boost::system::system_error like every other system's.
boost::system::error_code to_error_code(const ::grpc::Status& status);

// The echo server (systems/grpc_server.cpp): listens on 127.0.0.1 with an ephemeral port,
// requires and verifies a client certificate, and serves Echo in `mode` (close_on_accept: the
// server's maximum connection age is 1 ms, see there). `census` is sampled when it stops.
std::unique_ptr<Server> make_server(ServerMode mode,
                                    std::shared_ptr<::grpc::ServerCredentials> credentials,
                                    ThreadCensus& census);

}  // namespace sdmp::bench::grpc_bench
