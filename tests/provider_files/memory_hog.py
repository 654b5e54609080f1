hog = [bytes(64 * 1024 * 1024) for _ in range(1_000_000)]
