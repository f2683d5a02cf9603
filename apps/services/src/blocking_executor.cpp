#include "sdmp/services/blocking_executor.hpp"

namespace sdmp::services {

BlockingExecutor::BlockingExecutor(std::size_t threads)
    : pool_(threads == 0 ? 1 : threads), strand_(boost::asio::make_strand(pool_.get_executor())) {}

BlockingExecutor::~BlockingExecutor() {
    pool_.join();
}

}  // namespace sdmp::services
