# The session's Asio-free parts (framework/src/detail: send queue, compression choice, keepalive
# clock, lifecycle, request table; the call table is a header) compiled into `target` for the
# session_core and session_lifecycle fuzz targets, which the fuzz preset builds without the
# framework library, and test_protocol replays without linking it.
# sdmp/framework/error.hpp (framework_errc, which the lifecycle decides with) includes
# header-only Boost.System: Boost's headers are needed, none of its libraries.
if(NOT TARGET Boost::headers)
  find_package(Boost 1.81 CONFIG REQUIRED COMPONENTS headers)
endif()

function(sdmp_add_session_core target)
  set(src ${PROJECT_SOURCE_DIR}/framework/src)
  target_sources(${target} PRIVATE
    ${src}/send_queue.cpp ${src}/compression_chooser.cpp ${src}/keepalive_clock.cpp
    ${src}/session_lifecycle.cpp ${src}/request_table.cpp ${src}/error.cpp)
  target_include_directories(${target} PRIVATE ${src} ${PROJECT_SOURCE_DIR}/framework/include)
  # sdmp/framework/options.hpp includes log.hpp, which includes fmt.
  target_link_libraries(${target} PRIVATE fmt::fmt Boost::headers)
endfunction()
