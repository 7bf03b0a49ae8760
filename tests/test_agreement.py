"""Agreement between transcriptions (issue 11, part 3): the figures against hand-checked
values, then consensus or adjudication when a clip's last transcription lands, and the export."""

import json

import pytest

from reviews import agreement, leases, lifecycle, permissions, review, services
from reviews.models import Clip
from tests.helpers import events, make_user, session_client

LABELS = {"speaker": ["adult"]}


def test_normalisation_makes_case_punctuation_and_numbers_agree():
    assert agreement.text_normalise("Set a timer for 10 minutes, on the 3rd floor!") == \
        "set a timer for ten minutes on the third floor"
    assert agreement.text_normalise("Don't call 1,500 people.") == "dont call one thousand five hundred people"
    assert agreement.pair_wer(agreement.text_normalise("Set a timer for 10 minutes."),
                              agreement.text_normalise("set a timer for ten minutes")) == 0.0


def test_wer_and_cer_match_a_hand_count():
    a, b = "turn on the kitchen lights", "turn on the kitchen light"
    # One substituted word in five, either way round: WER 1/5.
    assert agreement.pair_wer(a, b) == pytest.approx(0.2)
    # One deleted character: 1/26 against a (26 characters), 1/25 against b; the mean of both.
    assert agreement.pair_cer(a, b) == pytest.approx((1 / 26 + 1 / 25) / 2)
    assert agreement.pair_wer("", "") == 0.0 and agreement.pair_wer("hello", "") == 1.0


def test_krippendorff_alpha_matches_a_hand_computed_coincidence_matrix():
    # Two coders, four clips, nominal values 1 1 2 2 and 1 1 2 1. Coincidences: o11 = 4,
    # o22 = 2, o12 = o21 = 1; n1 = 5, n2 = 3, n = 8. Do = 2/8, De = 2*5*3/(8*7) = 30/56,
    # alpha = 1 - Do/De = 1 - (1/4)/(15/28) = 8/15.
    one, two = {"g": ["one"]}, {"g": ["two"]}
    units = [[one, one], [one, one], [two, two], [two, one]]
    assert agreement.label_alpha(units=units, groups=["g"]) == {"g": pytest.approx(8 / 15, abs=1e-4)}
    assert agreement.label_alpha(units=units[:1], groups=["g"]) == {"g": None}  # undefined on one clip


def test_clip_agreement_picks_the_medoid_and_decides():
    figures = agreement.clip_agreement(
        texts=["Turn on the kitchen lights.", "turn on the kitchen light", "turn on kitchen lights"],
        labels=[{"s": ["a"]}, {"s": ["a"]}, {}], groups=["s"], locale="en-US", threshold=0.7)
    assert [p["wer"] for p in figures["pairs"]] == [0.2, 0.225, 0.45]  # 1/5; (1/5+1/4)/2; (2/5+2/4)/2
    assert figures["wer"] == pytest.approx((0.2 + 0.225 + 0.45) / 3, abs=1e-4)
    assert figures["consensus_index"] == 0 and figures["consensus_labels"] == {"s": ["a"]}
    assert figures["labels"] == {"s": pytest.approx(1 / 3, abs=1e-4)}
    assert figures["decision"] == "consensus"  # score 0.708 >= 0.7
    assert agreement.clip_agreement(texts=["a b", "c d"], labels=[{}, {}], groups=[], locale="en",
                                    threshold=0.5)["decision"] == "adjudication"


@pytest.fixture
def twice(project):
    project.transcriptions_per_clip = 2
    project.agreement_threshold = "0.7"
    project.save()
    return project


def transcribe(reviewer, text, labels=LABELS):
    assignment = leases.assignment_next(reviewer=reviewer)
    services.transcription_submit(reviewer=reviewer, assignment_id=assignment.pk, text=text, labels=labels)


def test_close_transcriptions_get_a_consensus_when_the_last_lands(twice, ingest, alice, bob):
    [clip] = ingest(1)
    transcribe(alice, "Turn on the kitchen lights.")
    clip.refresh_from_db()
    assert clip.agreement == {} and clip.final_source == ""  # not until the last one lands
    transcribe(bob, "turn on the kitchen light")
    clip.refresh_from_db()
    assert clip.agreement["wer"] == 0.2 and clip.agreement["decision"] == "consensus"
    assert clip.final_source == "consensus" and clip.final_text == "Turn on the kitchen lights."
    assert clip.final_labels == LABELS and clip.adjudication == ""
    # The trail has the submits only: no text, no figures in it.
    assert "kitchen" not in str([e.details for e in events()])


def test_disagreeing_transcriptions_go_to_a_checker_who_adjudicates(twice, ingest, alice, bob, ada, tmp_path):
    [clip] = ingest(1)
    transcribe(alice, "turn on the kitchen lights")
    transcribe(bob, "play some jazz music")
    clip.refresh_from_db()
    assert clip.agreement["decision"] == "adjudication" and clip.adjudication == "pending"
    cleo = make_user("cleo", permissions.CHECKER)
    twice.members.add(cleo)
    client = session_client(cleo)
    item = client.post("/api/v1/reviews/next/").json()
    # Nothing in common: 5 edits over 5 words one way, over 4 the other; (1 + 1.25) / 2.
    assert item["kind"] == "adjudicate" and item["agreement"]["wer"] == 1.125 and item["agreement"]["score"] == 0
    assert [c["text"] for c in item["candidates"]] == ["turn on the kitchen lights", "play some jazz music"]
    assert "alice" not in json.dumps(item) and "bob" not in json.dumps(item)
    assert client.post(f"/api/v1/reviews/{item['id']}/accept/", {}, format="json").status_code == 400
    response = client.post(f"/api/v1/reviews/{item['id']}/adjudicate/",
                           {"text": "turn on the kitchen lights", "labels": LABELS}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "adjudicated"
    clip.refresh_from_db()
    assert (clip.final_source, clip.final_text, clip.adjudication) == ("adjudicated", "turn on the kitchen lights",
                                                                        "done")
    [event] = events("review.adjudicate")
    assert event.details == {"picked": 0} and event.clip_id == clip.pk
    assert not permissions.clip_grant_held(cleo, clip)
    # A transcriber of the clip is never its adjudicator.
    assert review.review_next(checker=cleo) is None

    result = lifecycle.transcripts_export(admin=ada, project=twice, out_dir=tmp_path)
    [row] = [json.loads(line) for line in result.data_path.read_text().splitlines()]
    assert row["final"] == {"text": "turn on the kitchen lights", "labels": LABELS, "source": "adjudicated"}
    assert row["agreement"]["wer"] == 1.125 and row["agreement"]["normalisation"] == agreement.NORMALISATION
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["awaiting_decision"] == 0
    assert set(manifest["label_alpha"]) == set(twice.label_schema.groups.values_list("key", flat=True))
    assert manifest["label_alpha"]["speaker"] is None  # one clip: alpha is undefined, not made up


def test_a_transcriber_of_the_clip_cannot_adjudicate_it(twice, ingest, alice, bob):
    ingest(1)
    alice.groups.add(permissions.role_group(permissions.CHECKER))
    transcribe(alice, "turn on the kitchen lights")
    transcribe(bob, "play some jazz music")
    assert review.review_next(checker=alice) is None


def test_export_of_a_single_transcription_carries_it_as_final(project, ingest, alice, ada, tmp_path):
    ingest(1)
    transcribe(alice, "turn on the lights")
    result = lifecycle.transcripts_export(admin=ada, project=project, out_dir=tmp_path)
    [row] = [json.loads(line) for line in result.data_path.read_text().splitlines()]
    assert row["final"] == {"text": "turn on the lights", "labels": LABELS, "source": "single",
                            "segments": []}
    assert row["agreement"] is None
    assert Clip.objects.get().final_source == ""
