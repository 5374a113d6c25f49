"""The sandbox platform server over real HTTP: data, paging, auth, faults, request log."""

import requests

AUTH = {"Authorization": "Bearer sandbox-token"}


def get(platform, path, headers=AUTH, **params):
    return requests.get(f"{platform.url}{path}", params=params, headers=headers, timeout=5)


def test_pages_walk_a_whole_timeline_without_repeats_and_are_deterministic(platform):
    seen, cursor, pages = [], None, 0
    while True:
        body = get(platform, "/api/users/elonmusk/tweets", count=100, cursor=cursor or "").json()
        seen += [tweet["id"] for tweet in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) >= 150
    assert pages == -(-len(seen) // 100)
    again = get(platform, "/api/users/elonmusk/tweets", count=5).json()["data"]
    assert [tweet["id"] for tweet in again] == seen[:5]


def test_elonmusk_tweets_mention_tesla_and_replies_are_opt_in(platform):
    tweets = get(platform, "/api/users/elonmusk/tweets", count=100).json()["data"]
    assert any("Tesla" in tweet["text"] for tweet in tweets)
    assert not any(tweet["is_reply"] or tweet["is_retweet"] for tweet in tweets)
    with_replies = get(
        platform, "/api/users/elonmusk/tweets", count=100, include_replies="true"
    ).json()["data"]
    assert any(tweet["is_reply"] for tweet in with_replies)


def test_search_hashtag_profile_and_relations(platform):
    search = get(platform, "/api/search/tweets", q="tesla", lang="fr", count=3).json()["data"]
    assert all("tesla" in t["text"] and t["lang"] == "fr" for t in search)
    tagged = get(platform, "/api/hashtags/ai/tweets", count=3).json()["data"]
    assert all("#ai" in t["text"] for t in tagged)
    profile = get(platform, "/api/users/elonmusk").json()["data"]
    assert profile["name"] == "Elon Musk"
    followers = get(platform, "/api/users/elonmusk/followers", count=3).json()["data"]
    following = get(platform, "/api/users/elonmusk/following", count=3).json()["data"]
    assert {u["id"] for u in followers}.isdisjoint({u["id"] for u in following})
    assert get(platform, "/api/users/gone_user").status_code == 404


def test_missing_or_wrong_token_is_401(platform):
    assert get(platform, "/api/users/elonmusk", headers={}).status_code == 401
    response = get(platform, "/api/users/elonmusk", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid or missing token"}


def test_bad_cursor_and_count_are_400(platform):
    assert get(platform, "/api/users/elonmusk/tweets", cursor="!!").status_code == 400
    assert get(platform, "/api/users/elonmusk/tweets", count=101).status_code == 400


def test_control_endpoint_injects_faults_and_the_log_records_account_and_proxy(platform):
    requests.post(
        f"{platform.url}/_control",
        json={"rate_limit_next": 1, "retry_after": 7, "fail_next": 1, "suspend_account": "acc-9"},
        timeout=5,
    )
    headers = {**AUTH, "X-Account-Id": "acc-1", "X-Proxy-Id": "proxy-1"}
    limited = get(platform, "/api/users/elonmusk", headers=headers)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    assert get(platform, "/api/users/elonmusk", headers=headers).status_code == 503
    assert get(platform, "/api/users/elonmusk", headers=headers).status_code == 200
    suspended = get(platform, "/api/users/elonmusk", headers={**AUTH, "X-Account-Id": "acc-9"})
    assert (suspended.status_code, suspended.json()) == (403, {"error": "Account suspended"})

    log = requests.get(f"{platform.url}/_requests", timeout=5).json()
    assert [entry["status"] for entry in log] == [429, 503, 200, 403]
    assert (log[0]["account_id"], log[0]["proxy_id"]) == ("acc-1", "proxy-1")

    platform.control(reset=True)
    assert platform.requests == []
    assert get(platform, "/api/users/elonmusk", headers=headers).status_code == 200
