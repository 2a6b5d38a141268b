#pragma once

// Uploads that try to make FFmpeg read something other than themselves, and the tripwires that tell whether it did:
// a loopback listener that records any connection, and an inotify watch that records any open of a file.
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "mp3c/testing/loopback.hpp"

namespace mp3c::converter::test {

// A TCP listener on 127.0.0.1 that nobody should ever connect to. The kernel completes a connection into the backlog
// before any accept, so once the code under test has returned, connected() knows without waiting.
class LoopbackListener {
  public:
    uint16_t port() const { return socket_.port(); }
    std::string url(const std::string& path) const { return socket_.url(path); }

    // Connections accepted so far (each is closed at once).
    int connections() {
        for (;;) {
            int client = ::accept4(socket_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
            if (client < 0) return accepted_;
            ::close(client);
            ++accepted_;
        }
    }

  private:
    testing::LoopbackSocket socket_{true};
    int accepted_ = 0;
};

// Records every open and read of one file (inotify: the events are queued when the open happens).
class FileWatch {
  public:
    explicit FileWatch(const std::string& path) : path_(path) {
        fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd_ < 0 || ::inotify_add_watch(fd_, path.c_str(), IN_OPEN | IN_ACCESS) < 0) {
            throw std::runtime_error("cannot watch " + path);
        }
    }
    ~FileWatch() { ::close(fd_); }
    FileWatch(const FileWatch&) = delete;
    FileWatch& operator=(const FileWatch&) = delete;

    // Opens and reads seen so far.
    int events() {
        alignas(inotify_event) char buffer[4096];
        for (;;) {
            ssize_t n = ::read(fd_, buffer, sizeof buffer);
            if (n <= 0) return events_;
            for (ssize_t at = 0; at < n;) {
                auto* event = reinterpret_cast<inotify_event*>(buffer + at);
                ++events_;
                at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
            }
        }
    }

  private:
    std::string path_;
    int fd_ = -1;
    int events_ = 0;
};

// ffmpeg arguments (without the output) for a file with `tracks` one-second tone tracks of different pitches, each in
// `codec`: legal, and hostile in number.
inline std::vector<std::string> many_tracks(int tracks, const std::string& codec) {
    std::vector<std::string> args;
    for (int i = 0; i < tracks; ++i) {
        args.insert(args.end(), {"-f", "lavfi", "-i",
                                 "sine=frequency=" + std::to_string(300 + 100 * i) + ":sample_rate=44100:duration=1"});
    }
    for (int i = 0; i < tracks; ++i) args.insert(args.end(), {"-map", std::to_string(i)});
    args.insert(args.end(), {"-c:a", codec});
    return args;
}

struct HostileFile {
    std::string name;      // what the case is, and the upload's file name (always a harmless-looking .mp4)
    std::string content;   // the bytes uploaded
    std::string mentions;  // a word the refusal must contain: it says what the file is
};

// One file per way FFmpeg follows a reference: `victim` is a file the uploader must not read (an absolute path and
// its name relative to the converter's working directory), `listener` a loopback address nobody may connect to.
inline std::vector<HostileFile> hostile_files(const std::string& victim, const std::string& victim_relative,
                                              LoopbackListener& listener) {
    std::string http = listener.url("/x.mp4");
    return {
        {"concat_absolute_path.mp4", "ffconcat version 1.0\nfile " + victim + "\n", "concat"},
        {"concat_relative_path.mp4", "ffconcat version 1.0\nfile " + victim_relative + "\n", "concat"},
        {"concat_without_header.mp4", "file '" + victim + "'\n", "concat"},
        {"concat_file_protocol.mp4", "ffconcat version 1.0\nfile file:" + victim + "\n", "concat"},
        {"concat_subfile.mp4", "ffconcat version 1.0\nfile 'subfile,,start,0,end,0,,:" + victim + "'\n", "concat"},
        {"concat_http.mp4", "ffconcat version 1.0\nfile " + http + "\n", "concat"},
        {"concat_data.mp4", "ffconcat version 1.0\nfile 'data:audio/mpeg;base64,SUQz'\n", "concat"},
        {"concat_tee.mp4", "ffconcat version 1.0\nfile 'tee:" + victim + "|" + victim + "'\n", "concat"},
        {"hls_http.mp4",
         "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n" + http +
             "\n#EXTINF:10.0,\nfile:" + victim + "\n#EXT-X-ENDLIST\n",
         "HLS"},
        {"hls_file.mp4", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n" + victim + "\n#EXT-X-ENDLIST\n", "HLS"},
        {"m3u_plain.mp4", "#EXTM3U\n#EXTINF:-1,radio\n" + http + "\n", "HLS"},
        {"dash_manifest.mp4",
         "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" type=\"static\" "
         "mediaPresentationDuration=\"PT10S\" minBufferTime=\"PT1S\" profiles=\"urn:mpeg:dash:profile:isoff-on-demand:"
         "2011\">\n<Period><AdaptationSet mimeType=\"audio/mp4\"><Representation id=\"a\" bandwidth=\"128000\" "
         "codecs=\"mp4a.40.2\"><BaseURL>" +
             http + "</BaseURL></Representation></AdaptationSet></Period>\n</MPD>\n",
         "DASH"},
        {"sdp_session.mp4",
         "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio " + std::to_string(listener.port()) +
             " RTP/AVP 0\n",
         "SDP"},
        {"imf_composition.mp4",
         "<?xml version=\"1.0\"?>\n<CompositionPlaylist xmlns=\"http://www.smpte-ra.org/schemas/2067-3/2016\">"
         "<Id>urn:uuid:00000000-0000-0000-0000-000000000000</Id></CompositionPlaylist>\n",
         "IMF"},
        {"pls_playlist.mp4", "[playlist]\nFile1=" + http + "\nNumberOfEntries=1\n", "PLS"},
    };
}

}  // namespace mp3c::converter::test
