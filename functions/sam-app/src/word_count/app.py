import collections
import os


def handler(event, context):
    words = str(event.get("text", "")).lower().split()
    top = collections.Counter(words).most_common(3)
    return {
        "words": len(words),
        "top": [[word, count] for word, count in top],
        "prefix": os.environ["RESULTS_PREFIX"],
        "stage": os.environ["STAGE"],
        "timeout_ms_left_max": context.get_remaining_time_in_millis() <= 5000,
    }
