"""Driven by bench/converter."""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

minutes, rounds = float(sys.argv[1]), int(sys.argv[2])
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
converter = os.path.join(root, "build", "release", "bin", "converter")
work = tempfile.mkdtemp(prefix="mp3c-bench-", dir=os.path.join(root, "build"))


try:
    source = os.path.join(work, "input.mp4")
    seconds = int(minutes * 60)
    t = time.perf_counter()
    # Ten chapters (a lecture's), for chapters=split; every method sees the same file.
    chapters = os.path.join(work, "chapters.txt")
    with open(chapters, "w") as f:
        f.write(";FFMETADATA1\n" + "".join(f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={i * seconds * 100}\n"
                                          f"END={(i + 1) * seconds * 100}\ntitle=Chapter {i + 1}\n" for i in range(10)))
    # BENCH_SIGNAL=rich: a chirp (50 Hz to 8 kHz over the length) mixed with pink noise, which costs the encoder more
    # than a sine (issue 20 measured the converter against ffmpeg on such a signal).
    if os.environ.get("BENCH_SIGNAL", "sine") == "rich":
        sweep = 8000 / (2 * seconds)
        audio = ["-f", "lavfi", "-i", f"aevalsrc=0.25*sin(2*PI*(50*t+{sweep}*t*t)):s=48000:d={seconds}",
                 "-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.25:sample_rate=48000:duration={seconds}",
                 "-filter_complex", "[1:a][2:a]amix=inputs=2:normalize=0[a]"]
        audio_map, chapter_input = "[a]", "3"
    else:
        audio = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
        audio_map, chapter_input = "1:a", "2"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=25:duration={seconds}", *audio,
                    "-f", "ffmetadata", "-i", chapters, "-map", "0:v", "-map", audio_map, "-map_chapters", chapter_input,
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-c:a", "aac", "-b:a", "128k",
                    "-ac", "2", source], check=True)
    print(f"converter benchmark ({os.environ.get('BENCH_SIGNAL', 'sine')} signal): {minutes:g}-minute 720p H.264/AAC MP4 ({os.path.getsize(source) / 2**20:.0f} MiB, "
          f"made in {time.perf_counter() - t:.0f} s), 192 kb/s MP3, {rounds} rounds, same machine and run")
    out = os.path.join(work, "out.mp3")
    methods = {
        # The default: as many encoders as cores (two here), the audio in segments encoded at once.
        "converter": [converter, "convert", source, out, "--bitrate", "192"],
        # ENCODER_THREADS=1: one encoder, decoding and encoding on one thread (the MP3 of one encoder), doing what
        # ffmpeg does: no cover from a video frame (its cost is measured below).
        "converter 1 thread": [converter, "convert", source, out, "--bitrate", "192", "--threads", "1", "--cover",
                               "none"],
        "ffmpeg": ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", source, "-vn", "-c:a", "libmp3lame",
                   "-b:a", "192k", out],
        # Loudness normalisation to -16 LUFS, -1 dBTP: ours (a measuring pass, then the encode) against FFmpeg's
        # loudnorm filter in one pass (its dynamic mode, which upsamples to 192 kHz).
        "converter -16 LUFS": [converter, "convert", source, out, "--bitrate", "192", "--loudness", "-16"],
        "ffmpeg loudnorm": ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", source, "-vn", "-af",
                            "loudnorm=I=-16:TP=-1", "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "192k", out],
        # What each option costs on its own, against the plain conversion above (which takes the cover from a
        # frame of the video, cover=auto being the default).
        "converter no cover": [converter, "convert", source, out, "--bitrate", "192", "--cover", "none"],
        "converter split": [converter, "convert", source, out, "--bitrate", "192", "--chapters", "split"],
        "converter trim": [converter, "convert", source, out, "--bitrate", "192", "--start", str(seconds // 10),
                           "--end", str(seconds * 9 // 10)],
        "converter tags": [converter, "convert", source, out, "--bitrate", "192", "--title", "Vorlesung",
                           "--artist", "Prof. Ünal", "--year", "2026", "--track", "3/12"],
        "original (pipe)": f"ffmpeg -hide_banner -loglevel error -i {source} -vn -f s16le -ac 2 -ar 44100 - | "
                           f"ffmpeg -hide_banner -loglevel error -y -f s16le -ac 2 -ar 44100 -i - -c:a libmp3lame "
                           f"-b:a 192k {out}",
    }
    walls = {name: [] for name in methods}
    peaks = {name: 0.0 for name in methods}
    for r in range(rounds):
        for name, args in (list(methods.items()) if r % 2 == 0 else list(reversed(methods.items()))):
            # A fresh process per measurement, so each peak RSS is its own: measure through a child python.
            code = ("import resource,subprocess,sys,time,json;a=json.loads(sys.argv[1]);s=time.perf_counter();"
                    "subprocess.run(a,shell=isinstance(a,str),check=True,stdout=subprocess.DEVNULL,"
                    "stderr=subprocess.DEVNULL);w=time.perf_counter()-s;"
                    "print(w,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
            res = subprocess.run([sys.executable, "-c", code, json.dumps(args)], check=True, capture_output=True,
                                 text=True).stdout.split()
            wall, peak = float(res[0]), int(res[1]) / 1024
            walls[name].append(wall)
            peaks[name] = max(peaks[name], peak)
            print(f"  round {r + 1}  {name:16s} {wall:6.2f} s   peak RSS {peak:6.1f} MiB")
    med = {name: statistics.median(w) for name, w in walls.items()}
    print(f"median wall time: converter {med['converter']:.2f} s, ffmpeg {med['ffmpeg']:.2f} s, "
          f"original {med['original (pipe)']:.2f} s")
    ratio = med["converter"] / med["ffmpeg"]
    print(f"ratio converter/ffmpeg: {ratio:.3f}   target <= 0.65 (parallel segments): "
          f"{'met' if ratio <= 0.65 else 'NOT met'}")
    single = med["converter 1 thread"] / med["ffmpeg"]
    print(f"ratio converter --threads 1/ffmpeg: {single:.3f}   target <= 1.0: {'met' if single <= 1.0 else 'NOT met'}")
    print(f"ratio converter/original: {med['converter'] / med['original (pipe)']:.3f}")
    print(f"loudness: converter -16 LUFS {med['converter -16 LUFS']:.2f} s = "
          f"{med['converter -16 LUFS'] / med['converter']:.2f} x a plain conversion; "
          f"ratio to ffmpeg loudnorm {med['converter -16 LUFS'] / med['ffmpeg loudnorm']:.3f}")
    plain = med["converter"]
    costs = ", ".join(f"{label} {med[name] / plain:.2f}" for label, name in
                      [("loudness -16", "converter -16 LUFS"), ("split into 10", "converter split"),
                       ("trim to 80 %", "converter trim"), ("tags", "converter tags")])
    print(f"cost of each option, x a plain conversion: {costs}; cover from a video frame: "
          f"{plain / med['converter no cover']:.3f} x one without")
    print(f"ratio converter --cover none/ffmpeg: {med['converter no cover'] / med['ffmpeg']:.3f}")
    print(f"converter peak RSS: {peaks['converter']:.1f} MiB (one thread {peaks['converter 1 thread']:.1f} MiB)   "
          f"target <= 64 MiB: "
          f"{'met' if peaks['converter'] <= 64 else 'NOT met'}   (ffmpeg {peaks['ffmpeg']:.1f} MiB; the pipe method's "
          f"largest process {peaks['original (pipe)']:.1f} MiB)")
    # The seam check: the parallel MP3 and one encoder's, each against the source, window by window.
    one, parallel = os.path.join(work, "one.mp3"), os.path.join(work, "parallel.mp3")
    subprocess.run(methods["converter 1 thread"][:3] + [one] + methods["converter 1 thread"][4:], check=True,
                   capture_output=True)
    subprocess.run(methods["converter"][:3] + [parallel] + methods["converter"][4:], check=True, capture_output=True)
    subprocess.run([sys.executable, os.path.join(root, "bench", "seam_check.py"), source, one, parallel], check=False)
finally:
    shutil.rmtree(work, ignore_errors=True)
