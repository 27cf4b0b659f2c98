// Content-addressed artifacts (issue 12): manifests, the suite's
// `artifacts:` field, the coordinator's store (digest checks, quota, garbage
// collection on simulated time), the artifact RPCs over real gRPC, the
// agent's cache (verification, re-fetch of a corrupted entry, its limit),
// and real `perfgate coordinator` / `agent` / `gate` processes running a
// case from a tree the gate's side deletes right after submitting.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "agent/artifact_cache.h"
#include "gate/artifact_upload.h"
#include "gate/local_cluster.h"
#include "coordinator/artifact_store.h"
#include "coordinator/coordinator.h"
#include "core/artifact_tree.h"
#include "core/suite.h"
#include "perfgate/v1/artifact.grpc.pb.h"
#include "perfgate/v1/gate.grpc.pb.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::PerfgateBinary;
using testing::Subprocess;

void WriteFile(const std::string& path, const std::string& text, bool executable = false) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
  fs::permissions(path, executable ? fs::perms(0755) : fs::perms(0644), fs::perm_options::replace);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool IsExecutable(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && (st.st_mode & S_IXUSR) != 0;
}

// A small build output: a script, a nested data file.
std::string MakeTree(const testing::TempDir& dir, const std::string& name) {
  const std::string root = dir.File(name);
  WriteFile(root + "/bin/run.sh", "#!/bin/sh\necho ran\n", /*executable=*/true);
  WriteFile(root + "/data/input.txt", "42\n");
  return root;
}

// ---------------------------------------------------------------- manifests

TEST(ArtifactTreeTest, ScanTreeListsFilesSortedWithDigestsSizesAndExecutableBits) {
  testing::TempDir dir;
  const std::string root = MakeTree(dir, "tree");
  auto manifest = ScanTree(root);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  ASSERT_EQ(manifest->files_size(), 2);
  EXPECT_EQ(manifest->files(0).path(), "bin/run.sh");
  EXPECT_TRUE(manifest->files(0).executable());
  EXPECT_EQ(manifest->files(0).digest(), DigestOfBytes("#!/bin/sh\necho ran\n"));
  EXPECT_EQ(manifest->files(1).path(), "data/input.txt");
  EXPECT_FALSE(manifest->files(1).executable());
  EXPECT_EQ(manifest->files(1).size(), 3u);
  // The tree's name is stable: the same folder gives the same manifest bytes.
  EXPECT_EQ(SerializeManifest(*manifest), SerializeManifest(*ScanTree(root)));
  EXPECT_EQ(DigestOfBytes(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// A link in a build folder used to upload the file it named, wherever that
// was: a CI secret linked in would reach the case that runs on the agents.
TEST(ArtifactTreeTest, ALinkOutOfTheFolderIsRefusedAndOneWithinItIsUploadedAsItsFile) {
  testing::TempDir dir;
  const std::string root = MakeTree(dir, "tree");
  fs::create_symlink("input.txt", root + "/data/same.txt");
  auto manifest = ScanTree(root);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  ASSERT_EQ(manifest->files_size(), 3);
  EXPECT_EQ(manifest->files(2).path(), "data/same.txt");
  EXPECT_EQ(manifest->files(2).digest(), DigestOfBytes("42\n"));

  WriteFile(dir.File("secret"), "token\n");
  fs::create_symlink(dir.File("secret"), root + "/data/leak");
  auto refused = ScanTree(root);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("data/leak' is a symbolic link to '" + fs::canonical(dir.File("secret")).string() +
                                                    "', outside the artifact folder"));
  fs::remove(root + "/data/leak");
  fs::create_symlink("../bin", root + "/data/bin");
  EXPECT_THAT(ScanTree(root).status().message(), HasSubstr("is a symbolic link to a folder, which is not followed"));
}

TEST(ArtifactTreeTest, AManifestFromTheNetworkCannotEscapeItsFolder) {
  for (const std::string bad : {"../etc/passwd", "/etc/passwd", "a//b", "a/./b", "a/..", ""}) {
    v1::ArtifactManifest manifest;
    auto* file = manifest.add_files();
    file->set_path(bad);
    file->set_digest(DigestOfBytes("x"));
    auto parsed = ParseManifest(SerializeManifest(manifest));
    EXPECT_FALSE(parsed.ok()) << "accepted '" << bad << "'";
  }
  v1::ArtifactManifest unsorted;
  for (const char* path : {"b", "a"}) {
    auto* file = unsorted.add_files();
    file->set_path(path);
    file->set_digest(DigestOfBytes(path));
  }
  EXPECT_THAT(ParseManifest(SerializeManifest(unsorted)).status().message(), HasSubstr("not sorted"));
  v1::ArtifactManifest bad_digest;
  bad_digest.add_files()->set_path("a");
  bad_digest.mutable_files(0)->set_digest("ABC");
  EXPECT_THAT(ParseManifest(SerializeManifest(bad_digest)).status().message(), HasSubstr("not 64 lowercase hex"));
}

// ------------------------------------------------------------ suite parsing

TEST(SuiteArtifactsTest, AFolderOrNamedFoldersRelativeToTheSuite) {
  testing::TempDir dir;
  MakeTree(dir, "build");
  MakeTree(dir, "data");
  auto plain = ParseSuite("suite: s\nartifacts: build\ncases:\n  - {name: a, command: [x]}\n", "s.yaml", dir.path());
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_EQ(plain->artifact_dirs_size(), 1);
  EXPECT_EQ(plain->artifact_dirs(0).name(), "");
  EXPECT_EQ(plain->artifact_dirs(0).path(), dir.File("build"));
  auto named = ParseSuite("suite: s\nartifacts: {BIN: build, DATA: data}\ncases:\n  - {name: a, command: [x]}\n",
                          "s.yaml", dir.path());
  ASSERT_TRUE(named.ok()) << named.status();
  ASSERT_EQ(named->artifact_dirs_size(), 2);
  EXPECT_EQ(named->artifact_dirs(1).name(), "DATA");
  EXPECT_EQ(named->artifact_dirs(1).path(), dir.File("data"));
}

TEST(SuiteArtifactsTest, BadArtifactsFieldsNameFileLineAndWhatIsWrong) {
  testing::TempDir dir;
  MakeTree(dir, "build");
  auto parse = [&](const std::string& artifacts) {
    return ParseSuite("suite: s\nartifacts: " + artifacts + "\ncases:\n  - {name: a, command: [x]}\n", "s.yaml",
                      dir.path())
        .status();
  };
  EXPECT_THAT(parse("missing").message(), HasSubstr("s.yaml:2:12: artifacts: '" + dir.File("missing") +
                                                    "' is not a folder"));
  EXPECT_THAT(parse("{1BIN: build}").message(), HasSubstr("s.yaml:2:13: artifacts: the name '1BIN' may use only"));
  EXPECT_THAT(parse("{BIN-X: build}").message(), HasSubstr("the name 'BIN-X'"));
  EXPECT_THAT(parse("[build]").message(), HasSubstr("s.yaml:2:12: artifacts must be a folder, or a map NAME: folder"));
  EXPECT_THAT(parse("{BIN: [build]}").message(), HasSubstr("artifacts.BIN must be a single value"));
  EXPECT_THAT(parse("{BIN: ''}").message(), HasSubstr("is not a folder"));
}

TEST(SuiteArtifactsTest, GateFlagsAddFoldersAndRefuseRepeatsAndBadNames) {
  testing::TempDir dir;
  const std::string build = MakeTree(dir, "build");
  v1::Suite suite;
  ASSERT_TRUE(AddArtifactFlags({build, "DATA=" + build}, &suite).ok());
  EXPECT_EQ(suite.artifact_dirs_size(), 2);
  EXPECT_THAT(AddArtifactFlags({build}, &suite).message(), HasSubstr("PERFGATE_ARTIFACTS is already given"));
  EXPECT_THAT(AddArtifactFlags({"a-b=" + build}, &suite).message(), HasSubstr("the name 'a-b'"));
  EXPECT_THAT(AddArtifactFlags({"X=" + dir.File("nope")}, &suite).message(), HasSubstr("is not a folder"));
}

TEST(SuiteArtifactsTest, InPlaceForTheEmbeddedDefaultKeepsDollarsLiteral) {
  v1::Suite suite;
  suite.add_cases()->set_name("a");
  auto* dir = suite.add_artifact_dirs();
  dir->set_path("/builds/$HOME");
  auto* named = suite.add_artifact_dirs();
  named->set_name("DATA");
  named->set_path("/data");
  UseArtifactsInPlace(&suite);
  EXPECT_EQ(suite.artifact_dirs_size(), 0);
  EXPECT_EQ(suite.cases(0).env().at("PERFGATE_ARTIFACTS"), "/builds/$$HOME");
  EXPECT_EQ(suite.cases(0).env().at("PERFGATE_ARTIFACTS_DATA"), "/data");
}

// ------------------------------------------------------- coordinator store

class ArtifactStoreTest : public ::testing::Test {
 protected:
  void Open(uint64_t quota = 1 << 20) {
    ArtifactStoreOptions options;
    options.dir = dir_.File("artifacts");
    options.quota_bytes = quota;
    options.keep_runs_ms = 1000 * 1000;
    options.upload_grace_ms = 100 * 1000;
    auto store = ArtifactStore::Open(options, &clock_, [this](const std::string& run) { return unfinished_.count(run) > 0; });
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  absl::StatusOr<bool> Put(const std::string& bytes) {
    auto upload = store_->BeginUpload(DigestOfBytes(bytes), bytes.size());
    if (!upload.ok()) return upload.status();
    if (auto s = (*upload)->Append(bytes); !s.ok()) return s;
    return (*upload)->Finish();
  }

  testing::TempDir dir_;
  SimulatedTimeSource clock_;
  std::set<std::string> unfinished_;
  std::unique_ptr<ArtifactStore> store_;
};

TEST_F(ArtifactStoreTest, BytesThatDoNotMatchTheirDigestAreNotStored) {
  Open();
  auto upload = store_->BeginUpload(DigestOfBytes("good"), 4);
  ASSERT_TRUE(upload.ok());
  ASSERT_TRUE((*upload)->Append("evil").ok());
  auto finished = (*upload)->Finish();
  EXPECT_EQ(finished.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(finished.status().message(), HasSubstr("not the " + DigestOfBytes("good")));
  upload->reset();
  EXPECT_FALSE(store_->Has(DigestOfBytes("good")));
  EXPECT_EQ(store_->FindMissing({DigestOfBytes("good")}).size(), 1u);
  EXPECT_TRUE(fs::is_empty(dir_.File("artifacts/tmp"))) << "a refused upload leaves nothing behind";

  auto too_long = store_->BeginUpload(DigestOfBytes("abc"), 2);
  ASSERT_TRUE(too_long.ok());
  EXPECT_EQ((*too_long)->Append("abc").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->BeginUpload("not-a-digest", 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ArtifactStoreTest, TheSameBlobTwiceIsStoredOnce) {
  Open();
  EXPECT_EQ(*Put("blob"), true);
  EXPECT_EQ(*Put("blob"), false);
  EXPECT_EQ(store_->Stats().uploads_stored, 1u);
  EXPECT_EQ(store_->Stats().blobs, 1u);
}

TEST_F(ArtifactStoreTest, AnUploadOverTheQuotaIsRefusedAfterCollectingWhatItCan) {
  Open(/*quota=*/100);
  ASSERT_TRUE(Put(std::string(60, 'a')).ok());
  ASSERT_TRUE(store_->Pin("run1", {DigestOfBytes(std::string(60, 'a'))}).ok());
  unfinished_.insert("run1");
  ASSERT_TRUE(Put(std::string(30, 'b')).ok());  // unpinned: collectable once its grace is over
  clock_.Advance(200 * 1000);
  // 60 + 30 + 30 > 100 until the unpinned blob goes; then it fits.
  ASSERT_TRUE(Put(std::string(30, 'c')).ok());
  EXPECT_FALSE(store_->Has(DigestOfBytes(std::string(30, 'b'))));
  auto refused = Put(std::string(50, 'd'));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("--artifact-quota"));
  EXPECT_TRUE(store_->Has(DigestOfBytes(std::string(60, 'a')))) << "an unfinished run's blob is never collected";
}

// Room is taken as the bytes arrive: a header declaring most of the quota
// and then nothing held every other upload off while its stream stayed open.
TEST_F(ArtifactStoreTest, AnUploadThatSendsNothingHoldsNoRoom) {
  Open(/*quota=*/100);
  auto idle = store_->BeginUpload(DigestOfBytes(std::string(90, 'i')), 90);
  ASSERT_TRUE(idle.ok()) << idle.status();
  EXPECT_TRUE(Put(std::string(50, 'h')).ok()) << "an honest upload beside an idle one";
  // The idle one, sending at last, finds the room taken and is refused, leaving nothing.
  EXPECT_EQ((*idle)->Append(std::string(90, 'i')).code(), absl::StatusCode::kResourceExhausted);
  idle->reset();
  EXPECT_TRUE(fs::is_empty(dir_.File("artifacts/tmp")));
  EXPECT_TRUE(Put(std::string(50, 'j')).ok()) << "what the refused upload had was given back";
}

// A declared size near 2^64 used to wrap the quota's sum to a small number:
// admitted, it switched the quota off for every upload while it stayed open.
TEST_F(ArtifactStoreTest, ASizeThatWouldWrapTheQuotaIsRefused) {
  Open(/*quota=*/100);
  ASSERT_TRUE(Put("x").ok());
  auto huge = store_->BeginUpload(DigestOfBytes("y"), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Put(std::string(100, 'z')).status().code(), absl::StatusCode::kResourceExhausted) << "the quota still holds";
  EXPECT_TRUE(Put(std::string(99, 'z')).ok());
  Open(/*quota=*/50);  // lowered since: 100 bytes stored, over it
  EXPECT_EQ(Put("w").status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(ArtifactStoreTest, GarbageIsWhatNoRecentOrUnfinishedRunNeeds) {
  Open();
  const std::string a = DigestOfBytes("a"), b = DigestOfBytes("b"), c = DigestOfBytes("c");
  for (const char* bytes : {"a", "b", "c"}) ASSERT_TRUE(Put(bytes).ok());
  ASSERT_TRUE(store_->Pin("run1", {a}).ok());
  ASSERT_TRUE(store_->Pin("run2", {b}).ok());
  unfinished_.insert("run1");

  clock_.Advance(150 * 1000);  // past the upload grace, within keep_runs
  store_->CollectGarbage();
  EXPECT_TRUE(store_->Has(a));
  EXPECT_TRUE(store_->Has(b)) << "a recent finished run keeps its artifacts";
  EXPECT_FALSE(store_->Has(c)) << "nothing pinned it";
  EXPECT_FALSE(fs::exists(dir_.File("artifacts/blobs/" + c)));

  clock_.Advance(1000 * 1000);  // past keep_runs
  store_->CollectGarbage();
  EXPECT_TRUE(store_->Has(a)) << "run1 has not finished";
  EXPECT_FALSE(store_->Has(b));

  // A restarted coordinator reads the pins back.
  store_.reset();
  Open();
  clock_.Advance(150 * 1000);
  store_->CollectGarbage();
  EXPECT_TRUE(store_->Has(a));
  unfinished_.clear();
  store_->CollectGarbage();
  EXPECT_FALSE(store_->Has(a));
  EXPECT_EQ(store_->Stats().blobs, 0u);
}

// ----------------------------------------------- RPCs and the agent's cache

// The embedded cluster: a real coordinator on loopback with tokens, and
// agents whose artifact caches live in its state folder.
class ArtifactClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LocalClusterOptions options;
    options.state_dir = dir_.File("state");
    options.agents = 1;
    auto cluster = LocalCluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    client_.coordinator = cluster_->address();
    client_.security = cluster_->submitter();
  }
  std::shared_ptr<grpc::Channel> Channel(const std::string& token) {
    ClientSecurity security;
    security.token = token;
    return OpenChannel(cluster_->address(), security, grpc::ChannelArguments());
  }
  // A suite of one case naming `tree`, uploaded.
  v1::Suite UploadedSuite(const std::string& tree, UploadSummary* summary = nullptr) {
    v1::Suite suite;
    suite.set_name("artifacts");
    auto* c = suite.add_cases();
    c->set_name("run");
    c->add_argv("${PERFGATE_ARTIFACTS}/bin/run.sh");
    c->set_repeats(1);
    EXPECT_TRUE(AddArtifactFlags({tree}, &suite).ok());
    auto uploaded = UploadArtifacts(client_, &suite);
    EXPECT_TRUE(uploaded.ok()) << uploaded.status();
    if (summary && uploaded.ok()) *summary = *uploaded;
    return suite;
  }

  testing::TempDir dir_;
  std::unique_ptr<LocalCluster> cluster_;
  GateClientOptions client_;
};

TEST_F(ArtifactClusterTest, ASecondUploadOfTheSameTreeSendsNothing) {
  const std::string tree = MakeTree(dir_, "tree");
  UploadSummary first, second;
  UploadedSuite(tree, &first);
  UploadedSuite(tree, &second);
  EXPECT_EQ(first.trees, 1u);
  EXPECT_EQ(first.files, 3u);  // two files and the manifest
  EXPECT_EQ(first.uploaded_files, 3u);
  EXPECT_EQ(second.files, 3u);
  EXPECT_EQ(second.uploaded_files, 0u);
  EXPECT_EQ(second.uploaded_bytes, 0u);
  EXPECT_EQ(cluster_->coordinator().artifacts().Stats().uploads_stored, 3u);
}

TEST_F(ArtifactClusterTest, ASuiteNamingATreeTheCoordinatorLacksIsRefusedAtSubmit) {
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("s");
  auto* c = request.mutable_suite()->add_cases();
  c->set_name("run");
  c->add_argv("/bin/true");
  auto* ref = c->add_artifacts();
  ref->set_manifest_digest(DigestOfBytes("never uploaded"));
  auto gate = v1::GateService::NewStub(OpenChannel(cluster_->address(), cluster_->submitter(), {}));
  grpc::ClientContext context;
  v1::SubmitRunResponse response;
  grpc::Status status = gate->SubmitRun(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("case 'run': artifact manifest " + DigestOfBytes("never uploaded") +
                                                " is not on the coordinator"));
}

TEST_F(ArtifactClusterTest, AChunkOverTheCallLimitIsRefused) {
  auto stub = v1::ArtifactService::NewStub(OpenChannel(cluster_->address(), cluster_->submitter(), {}));
  grpc::ClientContext context;
  v1::UploadArtifactResponse response;
  auto writer = stub->UploadArtifact(&context, &response);
  v1::UploadArtifactChunk chunk;
  const std::string big(5 << 20, 'x');  // over the 4 MiB limit of UploadArtifact's messages
  chunk.set_digest(DigestOfBytes(big));
  chunk.set_size(big.size());
  chunk.set_data(big);
  writer->Write(chunk);
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("UploadArtifact request is"));
  EXPECT_FALSE(cluster_->coordinator().artifacts().Has(DigestOfBytes(big)));
}

TEST_F(ArtifactClusterTest, TheAgentRunsTheCaseFromItsOwnCopyAfterTheTreeIsGone) {
  const std::string tree = MakeTree(dir_, "tree");
  v1::SubmitRunRequest request;
  *request.mutable_suite() = UploadedSuite(tree);
  fs::remove_all(tree);
  Interrupt interrupt;
  auto run = SubmitAndWatch(client_, request, &interrupt);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->cases_size(), 1);
  const auto& result = run->cases(0).result();
  EXPECT_EQ(result.outcome(), v1::CaseResult::OUTCOME_OK) << result.error();
  EXPECT_EQ(result.stdout_tail(), "ran\n");
  // The case's folder is removed; the cache keeps the blobs for the next run.
  EXPECT_TRUE(fs::exists(dir_.File("state/agent-1/blobs/" + DigestOfBytes("42\n"))));
  EXPECT_TRUE(fs::is_empty(dir_.File("state/agent-1/cases")));
}

TEST_F(ArtifactClusterTest, AnArtifactGoneFromTheCoordinatorIsACaseErrorNotAMeasurement) {
  const std::string tree = MakeTree(dir_, "tree");
  v1::SubmitRunRequest request;
  *request.mutable_suite() = UploadedSuite(tree);
  // The index still lists it, the file is gone: the download fails.
  fs::remove(dir_.File("state/artifacts/blobs/" + DigestOfBytes("42\n")));
  Interrupt interrupt;
  auto run = SubmitAndWatch(client_, request, &interrupt);
  ASSERT_TRUE(run.ok()) << run.status();
  const auto& result = run->cases(0).result();
  EXPECT_EQ(result.outcome(), v1::CaseResult::OUTCOME_ERROR);
  EXPECT_EQ(result.samples_size(), 0);
  EXPECT_THAT(result.error(), HasSubstr("artifacts of case 'run': data/input.txt: cannot fetch artifact " +
                                        DigestOfBytes("42\n")));
}

// The cache alone, against the cluster's coordinator.
class ArtifactCacheTest : public ArtifactClusterTest {
 protected:
  std::unique_ptr<ArtifactCache> OpenCache(uint64_t limit) {
    ArtifactCacheOptions options;
    options.dir = dir_.File("cache");
    options.limit_bytes = limit;
    auto cache = ArtifactCache::Open(options, Channel(cluster_->agent_token()));
    EXPECT_TRUE(cache.ok()) << cache.status();
    return cache.ok() ? *std::move(cache) : nullptr;
  }
};

TEST_F(ArtifactCacheTest, MaterialisesTheTreeWithExecutableBitsAndSetsTheVariables) {
  v1::Suite suite = UploadedSuite(MakeTree(dir_, "tree"));
  auto cache = OpenCache(1 << 20);
  auto prepared = cache->Prepare(suite.cases(0), dir_.File("case"), nullptr);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  const std::string root = prepared->env().at("PERFGATE_ARTIFACTS");
  EXPECT_EQ(root, dir_.File("case/tree"));
  EXPECT_EQ(prepared->cwd(), dir_.File("case"));
  EXPECT_EQ(ReadFile(root + "/data/input.txt"), "42\n");
  EXPECT_TRUE(IsExecutable(root + "/bin/run.sh"));
  EXPECT_FALSE(IsExecutable(root + "/data/input.txt"));
  EXPECT_EQ(cache->Stats().blobs_fetched, 3u);
}

// A tree's name from the network becomes a folder: one that climbs out of
// the case's folder is refused before anything is written.
TEST_F(ArtifactCacheTest, ATreeNameThatLeavesTheCaseFolderIsRefused) {
  v1::Suite suite = UploadedSuite(MakeTree(dir_, "tree"));
  auto cache = OpenCache(1 << 20);
  for (const char* name : {"../../escaped", "a/b", "..", "x\n"}) {
    v1::CaseSpec spec = suite.cases(0);
    spec.mutable_artifacts(0)->set_name(name);
    auto prepared = cache->Prepare(spec, dir_.File("cases/1"), nullptr);
    EXPECT_EQ(prepared.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(prepared.status().message(), HasSubstr("is not letters, digits and '_'")) << name;
  }
  EXPECT_FALSE(fs::exists(dir_.File("escaped"))) << "a file was placed outside the case's folder";
  EXPECT_FALSE(fs::exists(dir_.File("cases/1/trees")));
}

TEST_F(ArtifactCacheTest, ABRootsAreUploadedAndBecomeEachVariantsRoot) {
  testing::TempDir trees;
  WriteFile(trees.File("base/version"), "base\n");
  WriteFile(trees.File("head/version"), "head\n");
  v1::Suite suite;
  auto* c = suite.add_cases();
  c->set_name("ab");
  c->add_argv("/bin/cat");
  c->add_argv("${VARIANT_ROOT}/version");
  for (const char* side : {"base", "head"}) {
    auto* v = c->add_variants();
    v->set_name(side);
    v->set_root(trees.File(side));
  }
  auto uploaded = UploadArtifacts(client_, &suite);
  ASSERT_TRUE(uploaded.ok()) << uploaded.status();
  EXPECT_EQ(uploaded->trees, 2u);
  EXPECT_TRUE(suite.cases(0).variants(0).root().empty()) << "no path of the gate's machine is sent";
  auto cache = OpenCache(1 << 20);
  auto prepared = cache->Prepare(suite.cases(0), dir_.File("case"), nullptr);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(ReadFile(prepared->variants(0).root() + "/version"), "base\n");
  EXPECT_EQ(ReadFile(prepared->variants(1).root() + "/version"), "head\n");
}

TEST_F(ArtifactCacheTest, ACorruptedCacheEntryIsDetectedAndFetchedAgain) {
  v1::Suite suite = UploadedSuite(MakeTree(dir_, "tree"));
  auto cache = OpenCache(1 << 20);
  ASSERT_TRUE(cache->Prepare(suite.cases(0), dir_.File("case1"), nullptr).ok());
  // Same size, other bytes: only the digest can tell.
  WriteFile(dir_.File("cache/blobs/" + DigestOfBytes("42\n")), "43\n");
  auto again = cache->Prepare(suite.cases(0), dir_.File("case2"), nullptr);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(ReadFile(dir_.File("case2/tree/data/input.txt")), "42\n");
  EXPECT_EQ(cache->Stats().corrupt_refetched, 1u);
  EXPECT_EQ(cache->Stats().blobs_fetched, 4u);
  EXPECT_EQ(cache->Stats().cache_hits, 2u);
  EXPECT_EQ(ReadFile(dir_.File("cache/blobs/" + DigestOfBytes("42\n"))), "42\n");
}

TEST_F(ArtifactCacheTest, ATreeLargerThanTheCacheIsAnErrorSayingSo) {
  v1::Suite suite = UploadedSuite(MakeTree(dir_, "tree"));
  auto cache = OpenCache(/*limit=*/10);
  auto prepared = cache->Prepare(suite.cases(0), dir_.File("case"), nullptr);
  EXPECT_EQ(prepared.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(prepared.status().message(), HasSubstr("--artifact-cache-size"));
}

TEST_F(ArtifactCacheTest, TheLeastRecentlyUsedEntriesMakeRoom) {
  testing::TempDir trees;
  WriteFile(trees.File("one/a"), std::string(400, '1'));
  WriteFile(trees.File("two/b"), std::string(400, '2'));
  v1::Suite one = UploadedSuite(trees.File("one"));
  v1::Suite two = UploadedSuite(trees.File("two"));
  auto cache = OpenCache(/*limit=*/600);  // one tree at a time
  ASSERT_TRUE(cache->Prepare(one.cases(0), dir_.File("c1"), nullptr).ok());
  auto second = cache->Prepare(two.cases(0), dir_.File("c2"), nullptr);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(ReadFile(dir_.File("c2/tree/b")), std::string(400, '2'));
  EXPECT_GE(cache->Stats().evicted, 1u);
  EXPECT_FALSE(fs::exists(dir_.File("cache/blobs/" + DigestOfBytes(std::string(400, '1')))));
}

// ------------------------------------------------------------ real processes

class ArtifactProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.Write("agent.token", "agent-secret\n");
    dir_.Write("submit.token", "submit-secret\n");
    fs::create_directories(dir_.File("coordinator"));
    // Sessions outlive a killed agent by 1.5 x the lease TTL: long enough to submit to them.
    coordinator_ = std::make_unique<Subprocess>(std::vector<std::string>{
        PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db", dir_.File("coordinator/perfgate.db"),
        "--lease-ttl", "20s", "--agent-token-file", dir_.File("agent.token"), "--submit-token-file",
        dir_.File("submit.token")});
    address_ = testing::CoordinatorAddress(*coordinator_);
    ASSERT_FALSE(address_.empty()) << coordinator_->output();
  }
  // `perfgate agent` started in its own working folder.
  std::unique_ptr<Subprocess> StartAgent(const std::string& id) {
    fs::create_directories(dir_.File(id));
    auto agent = std::make_unique<Subprocess>(
        std::vector<std::string>{"/usr/bin/env", "-C", dir_.File(id), PerfgateBinary(), "agent", "--coordinator",
                                 address_, "--insecure", "--id", id, "--token-file", dir_.File("agent.token")});
    EXPECT_TRUE(agent->WaitForLine("registered", 30'000)) << agent->output();
    return agent;
  }
  std::vector<std::string> Gate(const std::string& suite, const std::string& commit) {
    return {PerfgateBinary(),
            "gate",
            "--coordinator",
            address_,
            "--insecure",
            "--suite",
            suite,
            "--token-file",
            dir_.File("submit.token"),
            "--commit",
            commit,
            "--json",
            dir_.File(commit + ".json")};
  }

  testing::TempDir dir_;
  std::unique_ptr<Subprocess> coordinator_;
  std::string address_;
};

TEST_F(ArtifactProcessTest, AgentsInTheirOwnFoldersRunCasesFromATreeDeletedRightAfterSubmit) {
  // The PR's build output and its data exist only here, on the gate's side.
  const std::string build = dir_.File("pr/build");
  fs::create_directories(build + "/bin");
  fs::copy_file(testing::CaseBinary("spin"), build + "/bin/spin");
  WriteFile(dir_.File("pr/data/input.txt"), "from the data tree\n");
  std::string suite = "suite: pr\nartifacts: build\ndefaults: {repeats: 1, warmup: 0}\ncases:\n";
  for (int i = 0; i < 4; ++i) {
    suite += "  - name: spin" + std::to_string(i) + "\n    command: [\"${PERFGATE_ARTIFACTS}/bin/spin\", \"2000\"]\n";
  }
  suite += "  - name: data\n    command: [/bin/cat, \"${PERFGATE_ARTIFACTS_DATA}/input.txt\"]\n";
  const std::string suite_path = dir_.Write("pr/suite.yaml", suite);

  // Agents register, then die: their sessions remain, so the run is accepted
  // and queued, but nothing can run until new agents come.
  {
    auto a1 = StartAgent("agent-1");
    auto a2 = StartAgent("agent-2");
  }
  std::vector<std::string> argv = Gate(suite_path, "c1");
  argv.insert(argv.end(), {"--artifacts", "DATA=" + dir_.File("pr/data")});
  Subprocess gate(argv);
  ASSERT_TRUE(gate.WaitForLine("uploaded 4 (", 60'000)) << gate.output();
  ASSERT_TRUE(gate.WaitForLine("submitted to", 60'000)) << gate.output();
  fs::remove_all(dir_.File("pr"));

  auto a1 = StartAgent("agent-1");
  auto a2 = StartAgent("agent-2");
  ASSERT_EQ(gate.Wait(120'000), 0) << gate.output();
  nlohmann::json report = nlohmann::json::parse(std::ifstream(dir_.File("c1.json")));
  ASSERT_EQ(report["cases"].size(), 5u);
  std::set<std::string> agents;
  for (const auto& c : report["cases"]) {
    EXPECT_EQ(c["outcome"], "ok") << c.dump();
    agents.insert(c["agent_id"].get<std::string>());
  }
  // Each agent that ran a case fetched into its own working folder's cache.
  for (const auto& id : agents) {
    EXPECT_FALSE(fs::is_empty(dir_.File(id + "/.perfgate-agent/blobs"))) << id;
  }
  EXPECT_TRUE(fs::exists(dir_.File("coordinator/artifacts/blobs/" + DigestOfBytes("from the data tree\n"))))
      << "the coordinator keeps artifacts beside its database";
}

TEST_F(ArtifactProcessTest, TheSecondSubmitOfTheSameTreeUploadsNothing) {
  const std::string build = dir_.File("pr/build");
  fs::create_directories(build + "/bin");
  fs::copy_file(testing::CaseBinary("spin"), build + "/bin/spin");
  const std::string suite_path = dir_.Write(
      "pr/suite.yaml",
      "suite: pr\nartifacts: build\ndefaults: {repeats: 1, warmup: 0}\ncases:\n"
      "  - name: spin\n    command: [\"${PERFGATE_ARTIFACTS}/bin/spin\", \"2000\"]\n");
  auto agent = StartAgent("agent-1");
  auto first = testing::RunCommand(Gate(suite_path, "c1"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_THAT(first.output, HasSubstr("artifacts: 1 tree, 2 blobs"));
  EXPECT_THAT(first.output, HasSubstr("uploaded 2 ("));
  auto second = testing::RunCommand(Gate(suite_path, "c2"));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_THAT(second.output, HasSubstr("uploaded 0 (0 B)"));
}

TEST_F(ArtifactProcessTest, AnUnreadableArtifactsFlagIsBadInput) {
  auto gate = testing::RunCommand({PerfgateBinary(), "gate", "--coordinator", address_, "--insecure", "--suite",
                                   testing::SourceDir() + "/bench_cases/demo.yaml", "--artifacts",
                                   "BIN=" + dir_.File("no-such-folder")});
  EXPECT_EQ(gate.exit_code, 2) << gate.output;
  EXPECT_THAT(gate.output, HasSubstr("--artifacts BIN=" + dir_.File("no-such-folder") + ": '" +
                                     dir_.File("no-such-folder") + "' is not a folder"));
}

}  // namespace
}  // namespace perfgate
