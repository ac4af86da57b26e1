// The spool's record format (torn tails, checksums) and the spool file
// itself (append, reopen, drain, full).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "daemon/spool.hpp"
#include "handlers/spool_format.hpp"

namespace tscb {
namespace {

storage::InboxRecord Record(int n) {
  storage::InboxRecord r;
  r.service = "CarrierService";
  r.source_ip = "127.0.0.1";
  r.dedup_key = "key-" + std::to_string(n);
  r.body_json = R"({"requestId":"r-)" + std::to_string(n) + R"(","x":"\u00e9"})";
  r.attempt = n % 4 + 1;
  r.request_id = "r-" + std::to_string(n);
  r.device_id = n % 2 ? "" : "8914800000080013970" + std::to_string(n % 10);
  r.device_kind = n % 2 ? "" : "iccid";
  r.received_us = 1'790'000'000'000'000 + n;
  return r;
}

std::string Encoded(int count) {
  std::string out;
  for (int i = 0; i < count; ++i) handlers::EncodeSpoolRecord(Record(i), out);
  return out;
}

TEST(SpoolFormat, RecordsComeBackFieldForField) {
  std::string data = Encoded(3);
  auto scan = handlers::ScanSpool(data);
  EXPECT_TRUE(scan.stopped.empty()) << scan.stopped;
  EXPECT_EQ(scan.valid_bytes, data.size());
  ASSERT_EQ(scan.records.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const auto& got = scan.records[i].record;
    auto want = Record(i);
    EXPECT_EQ(got.service, want.service);
    EXPECT_EQ(got.source_ip, want.source_ip);
    EXPECT_EQ(got.dedup_key, want.dedup_key);
    EXPECT_EQ(got.body_json, want.body_json);
    EXPECT_EQ(got.attempt, want.attempt);
    EXPECT_EQ(got.request_id, want.request_id);
    EXPECT_EQ(got.device_id, want.device_id);
    EXPECT_EQ(got.device_kind, want.device_kind);
    EXPECT_EQ(got.received_us, want.received_us);
  }
  EXPECT_EQ(scan.records[1].offset, scan.records[0].end);
  // At most `max_records`, ending on a record boundary.
  auto two = handlers::ScanSpool(data, 2);
  EXPECT_EQ(two.records.size(), 2u);
  EXPECT_EQ(two.valid_bytes, two.records[1].end);
}

TEST(SpoolFormat, ATornTailAtAnyByteLeavesTheWholeRecordsBeforeIt) {
  std::string two = Encoded(2);
  std::string three = Encoded(3);
  for (std::size_t cut = two.size() + 1; cut < three.size(); ++cut) {
    auto scan = handlers::ScanSpool(std::string_view(three).substr(0, cut));
    ASSERT_EQ(scan.records.size(), 2u) << "cut at " << cut;
    EXPECT_EQ(scan.valid_bytes, two.size());
    EXPECT_FALSE(scan.stopped.empty());
  }
}

TEST(SpoolFormat, AFlippedByteFailsTheChecksumOrTheMarker) {
  std::string data = Encoded(2);
  std::size_t first_end = handlers::ScanSpool(data).records[0].end;
  for (std::size_t at : {first_end + 1, first_end + 20, data.size() - 1}) {
    std::string bad = data;
    bad[at] = static_cast<char>(bad[at] ^ 0x40);
    auto scan = handlers::ScanSpool(bad);
    EXPECT_EQ(scan.records.size(), 1u) << "flipped " << at;
    EXPECT_EQ(scan.valid_bytes, first_end);
  }
  EXPECT_EQ(handlers::ScanSpool("garbage that is not a spool").records.size(), 0u);
}

std::size_t EncodedSize(int n) {
  std::string out;
  handlers::EncodeSpoolRecord(Record(n), out);
  return out.size();
}

TEST(SpoolFormat, FindsWhereWholeRecordsResumeAfterDamage) {
  std::string data = Encoded(3);
  const std::size_t second = EncodedSize(0), third = second + EncodedSize(1);
  data[second + 20] ^= 0x10;  // the second record's payload
  auto scan = handlers::ScanSpool(data);
  EXPECT_EQ(scan.records.size(), 1u);
  EXPECT_EQ(scan.stopped, "a checksum mismatch");
  EXPECT_EQ(handlers::FindSpoolRecord(data, 0), 0u) << "the first is whole";
  EXPECT_EQ(handlers::FindSpoolRecord(data, 1), third);
  EXPECT_EQ(handlers::FindSpoolRecord(data, second, third), std::string::npos);
  data.resize(data.size() - 1);  // the third torn: nothing whole after the damage
  EXPECT_EQ(handlers::FindSpoolRecord(data, 1), std::string::npos);
}

class SpoolFile : public ::testing::Test {
 protected:
  std::string dir_ = std::filesystem::temp_directory_path() /
                     ("tscb-spool-" + std::to_string(getpid()) + "-" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::string path_ = dir_ + "/sub/inbox.spool";
  ~SpoolFile() override { std::filesystem::remove_all(dir_); }
};

TEST_F(SpoolFile, AppendsSurviveAReopenAndATornTailIsCut) {
  std::vector<storage::InboxRecord> batch = {Record(1), Record(2), Record(3)};
  std::uint64_t whole = 0;
  {
    daemon::Spool spool(path_, 1 << 20, nullptr);
    std::string error;
    ASSERT_TRUE(spool.Append(batch, error)) << error;
    EXPECT_TRUE(spool.HasPending());
    whole = spool.GetStats().bytes;
  }
  std::ofstream(path_, std::ios::app) << "TSP1\x05";  // a write cut short by a crash
  daemon::Spool again(path_, 1 << 20, nullptr);
  auto stats = again.GetStats();
  EXPECT_EQ(stats.records, 3u);
  EXPECT_EQ(stats.bytes, whole);
  EXPECT_EQ(std::filesystem::file_size(path_), whole);
  std::uint64_t end = 0;
  auto next = again.Next(2, end);
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0].dedup_key, "key-1");
  again.Moved(end, next.size());
  EXPECT_EQ(again.GetStats().records, 1u);
  next = again.Next(10, end);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].dedup_key, "key-3");
  again.Moved(end, next.size());
  EXPECT_FALSE(again.HasPending());
  EXPECT_EQ(std::filesystem::file_size(path_), 0u);  // emptied once all moved
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::vector<std::string> DrainKeys(daemon::Spool& spool, std::size_t per_batch) {
  std::vector<std::string> keys;
  for (int guard = 0; spool.HasPending() && guard < 100; ++guard) {
    std::uint64_t end = 0;
    auto next = spool.Next(per_batch, end);
    for (const auto& r : next) keys.push_back(r.dedup_key);
    spool.Moved(end, next.size());
  }
  return keys;
}

TEST_F(SpoolFile, DamageInTheMiddleIsPassedOverAndSavedAndTheRecordsAfterItAreKept) {
  std::vector<storage::InboxRecord> batch = {Record(1), Record(2), Record(3), Record(4)};
  const std::size_t first = EncodedSize(1), second = EncodedSize(2);
  {
    daemon::Spool spool(path_, 1 << 20, nullptr);
    std::string error;
    ASSERT_TRUE(spool.Append(batch, error)) << error;
  }
  std::string before = ReadFile(path_);
  std::string damaged = before.substr(first, second);
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(first + 30));  // inside the second record
    f.put('\xff');
  }
  damaged[30] = '\xff';
  daemon::Spool again(path_, 1 << 20, nullptr);
  EXPECT_EQ(again.GetStats().records, 3u);
  EXPECT_EQ(again.GetStats().bytes, before.size()) << "whole records follow: not a torn tail";
  EXPECT_EQ(DrainKeys(again, 1), (std::vector<std::string>{"key-1", "key-3", "key-4"}));
  EXPECT_EQ(ReadFile(path_ + ".damaged"), damaged);
  EXPECT_EQ(std::filesystem::file_size(path_), 0u);
}

TEST_F(SpoolFile, RecordsDamagedWhileRunningArePassedOverByTheDrain) {
  daemon::Spool spool(path_, 1 << 20, nullptr);
  std::vector<storage::InboxRecord> batch = {Record(1), Record(2), Record(3)};
  std::string error;
  ASSERT_TRUE(spool.Append(batch, error)) << error;
  const std::size_t first = EncodedSize(1), second = EncodedSize(2);
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(first));  // the second record's marker
    f.put('X');
  }
  EXPECT_EQ(DrainKeys(spool, 10), (std::vector<std::string>{"key-1", "key-3"}));
  EXPECT_EQ(ReadFile(path_ + ".damaged").size(), second);
  EXPECT_FALSE(spool.HasPending());
  // Damage at the very end: nothing readable after it, the drain still ends.
  ASSERT_TRUE(spool.Append(batch, error)) << error;
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(first + second + 40));
    f.put('\x01');
  }
  EXPECT_EQ(DrainKeys(spool, 10), (std::vector<std::string>{"key-1", "key-2"}));
  EXPECT_FALSE(spool.HasPending());
  EXPECT_EQ(std::filesystem::file_size(path_), 0u);
}

TEST_F(SpoolFile, AFullSpoolRefusesAndKeepsWhatItHas) {
  std::string two;
  handlers::EncodeSpoolRecord(Record(1), two);
  handlers::EncodeSpoolRecord(Record(2), two);
  daemon::Spool spool(path_, two.size() + 10, nullptr);
  std::string error;
  std::vector<storage::InboxRecord> batch = {Record(1), Record(2)};
  ASSERT_TRUE(spool.Append(batch, error)) << error;
  std::vector<storage::InboxRecord> more = {Record(3)};
  EXPECT_FALSE(spool.Append(more, error));
  EXPECT_NE(error.find("full"), std::string::npos) << error;
  EXPECT_EQ(spool.GetStats().records, 2u);
  EXPECT_EQ(std::filesystem::file_size(path_), two.size());
}

TEST_F(SpoolFile, RecordsWithoutAnArrivalTimeGetOne) {
  daemon::Spool spool(path_, 1 << 20, nullptr);
  auto r = Record(1);
  r.received_us = 0;
  std::string error;
  std::vector<storage::InboxRecord> batch = {r};
  ASSERT_TRUE(spool.Append(batch, error));
  std::uint64_t end = 0;
  auto next = spool.Next(1, end);
  ASSERT_EQ(next.size(), 1u);
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  EXPECT_GT(next[0].received_us, now - 60'000'000);
  EXPECT_LE(next[0].received_us, now);
}

}  // namespace
}  // namespace tscb
