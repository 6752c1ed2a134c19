"""Every Cypher statement kgqa runs, as named constants.

Keeping them in one module (as neo4j-graphrag's ``neo4j_queries.py`` does) makes the graph
contract reviewable in one read and guarantees that all of them are parameterized: no value is
ever formatted into a query string.

Versioning model: a ``Clause`` node is one *version* of a clause, unique on
``(clause_id, version)``. Exactly one version per ``clause_id`` has ``status = 'active'``; older
ones are ``superseded`` and reachable through ``(new)-[:SUPERSEDES]->(old)``; clauses that vanished
from a re-ingested document are ``retired``. Answers cite a version node, so a trace keeps showing
the text that was cited after the clause changed. Triples are versioned with their clause.
"""

from __future__ import annotations

# --- schema -------------------------------------------------------------------------------------

SCHEMA: tuple[str, ...] = (
    "CREATE CONSTRAINT document_id IF NOT EXISTS FOR (n:Document) REQUIRE n.doc_id IS UNIQUE",
    "CREATE CONSTRAINT section_id IF NOT EXISTS FOR (n:Section) REQUIRE n.section_id IS UNIQUE",
    "CREATE CONSTRAINT clause_version IF NOT EXISTS FOR (n:Clause) REQUIRE (n.clause_id, n.version) IS UNIQUE",
    "CREATE CONSTRAINT chunk_id IF NOT EXISTS FOR (n:Chunk) REQUIRE n.chunk_id IS UNIQUE",
    "CREATE CONSTRAINT table_id IF NOT EXISTS FOR (n:Table) REQUIRE n.table_id IS UNIQUE",
    "CREATE CONSTRAINT entity_id IF NOT EXISTS FOR (n:Entity) REQUIRE n.entity_id IS UNIQUE",
    "CREATE CONSTRAINT triple_version IF NOT EXISTS FOR (n:Triple) REQUIRE (n.triple_id, n.version) IS UNIQUE",
    "CREATE CONSTRAINT change_seq IF NOT EXISTS FOR (n:Change) REQUIRE n.seq IS UNIQUE",
    "CREATE CONSTRAINT answer_id IF NOT EXISTS FOR (n:Answer) REQUIRE n.answer_id IS UNIQUE",
    "CREATE CONSTRAINT model_id IF NOT EXISTS FOR (n:ModelVersion) REQUIRE n.model_id IS UNIQUE",
    "CREATE CONSTRAINT sequence_name IF NOT EXISTS FOR (n:Sequence) REQUIRE n.name IS UNIQUE",
    "CREATE INDEX clause_id IF NOT EXISTS FOR (n:Clause) ON (n.clause_id)",
    "CREATE INDEX clause_doc_status IF NOT EXISTS FOR (n:Clause) ON (n.doc_id, n.status)",
    "CREATE INDEX triple_clause IF NOT EXISTS FOR (n:Triple) ON (n.clause_id)",
    "CREATE INDEX section_doc IF NOT EXISTS FOR (n:Section) ON (n.doc_id)",
    "CREATE INDEX table_doc IF NOT EXISTS FOR (n:Table) ON (n.doc_id)",
    "CREATE INDEX document_title_key IF NOT EXISTS FOR (n:Document) ON (n.title_key)",
    "CREATE INDEX answer_seq IF NOT EXISTS FOR (n:Answer) ON (n.seq)",
    "CREATE INDEX triple_id IF NOT EXISTS FOR (n:Triple) ON (n.triple_id)",
    "CREATE INDEX change_target IF NOT EXISTS FOR (n:Change) ON (n.target_id)",
    # for people who query the graph (DESIGN.md); retrieval's full-text ranking runs in process
    # from its snapshot (serving/retrieval/phrases.py) and reads neither
    "CREATE FULLTEXT INDEX clause_text IF NOT EXISTS FOR (n:Clause) ON EACH [n.text] "
    "OPTIONS {indexConfig: {`fulltext.analyzer`: 'cjk'}}",
    "CREATE FULLTEXT INDEX chunk_text IF NOT EXISTS FOR (n:Chunk) ON EACH [n.text] "
    "OPTIONS {indexConfig: {`fulltext.analyzer`: 'cjk'}}",
)

AWAIT_INDEXES = "CALL db.awaitIndexes(300)"

# --- change sequence (graph version) ------------------------------------------------------------

# Takes a write lock on the Sequence node, so concurrent ingests get disjoint seq ranges.
RESERVE_SEQ = """
MERGE (s:Sequence {name: 'change'})
ON CREATE SET s.value = 0
SET s.value = s.value + $n
RETURN s.value - $n AS first
"""

GRAPH_VERSION = "OPTIONAL MATCH (s:Sequence {name: 'change'}) RETURN coalesce(s.value, 0) AS version"

# The circuit breaker's probe: the database answers a read (a Bolt handshake alone is not enough:
# a restarting server accepts connections before its database is available).
PROBE = "RETURN 1 AS ok"

# --- fragments shared by the reads -------------------------------------------------------------


def with_section_path(node: str, carry: str) -> str:
    """Binds ``section_path`` for ``node`` (a Clause or a Section: anything with a ``section_id``)
    of document ``d``: its sections from the document down as "number title" strings, root first.

    The one fragment every read that reports a clause's place in its document uses. ``carry``
    lists the variables kept after it (``d`` and ``node`` among them when still needed).
    """
    return f"""
OPTIONAL MATCH path = (d)-[:HAS_SECTION*1..12]->(:Section {{section_id: {node}.section_id}})
WITH {carry}, head(collect(path)) AS path
WITH {carry},
     [x IN coalesce(nodes(path), []) WHERE x:Section | trim(coalesce(x.number, '') + ' ' + coalesce(x.title, ''))]
       AS section_path
"""


#: The document version a clause version reports (in citations, evidence, traces and clause
#: views): the one its document had when that clause version was written, else the document's.
DOC_VERSION = "coalesce(c.doc_version, d.version, 1)"

# --- reading the current state of a document before writing -------------------------------------

DOCUMENT_STATE = """
OPTIONAL MATCH (d:Document {doc_id: $doc_id})
OPTIONAL MATCH (c:Clause {doc_id: $doc_id, status: 'active'})
RETURN d.sha256 AS sha256, d.version AS version, d.source_path AS source_path,
       collect({clause_id: c.clause_id, sha256: c.sha256, version: c.version, origin: c.origin,
                source_sha256: c.source_sha256,
                top: head(COLLECT { MATCH (x:Clause {clause_id: c.clause_id})
                                    RETURN x.version AS v ORDER BY v DESC LIMIT 1 })}) AS clauses,
       COLLECT {
         MATCH (r:Clause {doc_id: $doc_id, status: 'retired'})
         WHERE NOT EXISTS { MATCH (:Clause {clause_id: r.clause_id, status: 'active'}) }
         RETURN {clause_id: r.clause_id, version: r.version, sha256: r.sha256,
                 by_editor: coalesce(r.retired_by_edit, false),
                 top: head(COLLECT { MATCH (x:Clause {clause_id: r.clause_id})
                                     RETURN x.version AS v ORDER BY v DESC LIMIT 1 })}
       } AS retired
"""

# --- writing a document -------------------------------------------------------------------------

MERGE_DOCUMENT = """
MERGE (d:Document {doc_id: $doc.doc_id})
SET d.title = $doc.title, d.kind = $doc.kind, d.source_path = $doc.source_path,
    d.sha256 = $doc.sha256, d.pages = $doc.pages, d.ocr_pages = $doc.ocr_pages,
    d.version = coalesce(d.version, 0) + 1, d.ingested_at = $doc.ingested_at,
    d.redactions_json = $doc.redactions_json, d.title_key = $doc.title_key
"""

MERGE_SECTIONS = """
UNWIND $sections AS s
MERGE (n:Section {section_id: s.section_id})
SET n.doc_id = $doc_id, n.number = s.number, n.title = s.title, n.level = s.level, n.ord = s.ord,
    n.parent_id = s.parent_id
"""

# Rebuild the section tree edges of one document (sections are cheap and carry no history).
DROP_SECTION_EDGES = """
MATCH (d:Document {doc_id: $doc_id})-[r:HAS_SECTION]->(:Section)
DELETE r
WITH count(*) AS _
MATCH (p:Section {doc_id: $doc_id})-[r:HAS_SECTION]->(:Section)
DELETE r
"""

LINK_SECTIONS = """
UNWIND $sections AS s
MATCH (n:Section {section_id: s.section_id})
OPTIONAL MATCH (p:Section {section_id: s.parent_id})
OPTIONAL MATCH (d:Document {doc_id: $doc_id})
WITH n, CASE WHEN p IS NULL THEN d ELSE p END AS parent
MERGE (parent)-[:HAS_SECTION]->(n)
"""

DELETE_STALE_SECTIONS = """
MATCH (n:Section {doc_id: $doc_id})
WHERE NOT n.section_id IN $keep
  AND NOT EXISTS { (n)-[:HAS_CLAUSE]->(:Clause) }
DETACH DELETE n
"""

CREATE_CLAUSES = """
UNWIND $clauses AS c
CREATE (n:Clause {clause_id: c.clause_id, version: c.version})
SET n.doc_id = $doc_id, n.number = c.number, n.ordinal = c.ordinal, n.text = c.text,
    n.page_start = c.page_start, n.page_end = c.page_end, n.sha256 = c.sha256,
    n.status = 'active', n.items_json = c.items_json, n.section_id = c.section_id,
    n.refs_target = c.refs_target, n.refs_text = c.refs_text, n.created_at = $at,
    n.doc_version = $doc_version
WITH n, c
MATCH (s:Section {section_id: c.section_id})
MERGE (s)-[:HAS_CLAUSE]->(n)
WITH n, c
OPTIONAL MATCH (old:Clause {clause_id: c.clause_id, status: 'active'}) WHERE old.version <> c.version
FOREACH (_ IN CASE WHEN old IS NULL THEN [] ELSE [1] END |
  SET old.status = 'superseded', old.superseded_at = $at
  MERGE (n)-[:SUPERSEDES]->(old)
)
"""

# Unchanged clauses may still move (page, ordinal, section) when text around them changed.
UPDATE_CLAUSE_POSITIONS = """
UNWIND $clauses AS c
MATCH (n:Clause {clause_id: c.clause_id, status: 'active'})
SET n.ordinal = c.ordinal, n.page_start = c.page_start, n.page_end = c.page_end,
    n.section_id = c.section_id, n.items_json = c.items_json,
    n.refs_target = c.refs_target, n.refs_text = c.refs_text
WITH n, c
OPTIONAL MATCH (s0:Section)-[r:HAS_CLAUSE]->(n) WHERE s0.section_id <> c.section_id
DELETE r
WITH n, c
MATCH (s:Section {section_id: c.section_id})
MERGE (s)-[:HAS_CLAUSE]->(n)
"""

# The source's new text of a clause an editor changed (or retired) by hand (re-ingestion's default
# conflict policy, kg/writer.py): stored as a ``pending`` version beside the edited version
# ``c.current``, which stays; an older pending version of the clause is superseded by it.
CREATE_PENDING_CLAUSES = """
UNWIND $clauses AS c
MATCH (cur:Clause {clause_id: c.clause_id, version: c.current})
OPTIONAL MATCH (p:Clause {clause_id: c.clause_id, status: 'pending'})
SET p.status = 'superseded', p.superseded_at = $at
WITH DISTINCT cur, c
CREATE (n:Clause {clause_id: c.clause_id, version: c.version})
SET n.doc_id = $doc_id, n.number = c.number, n.ordinal = c.ordinal, n.text = c.text,
    n.page_start = c.page_start, n.page_end = c.page_end, n.sha256 = c.sha256,
    n.status = 'pending', n.items_json = c.items_json, n.section_id = c.section_id,
    n.created_at = $at, n.doc_version = $doc_version, n.origin = 'source'
MERGE (n)-[:PENDING_FOR]->(cur)
"""

RETIRE_CLAUSES = """
UNWIND $clause_ids AS cid
MATCH (n:Clause {clause_id: cid, status: 'active'})
SET n.status = 'retired', n.retired_at = $at
"""

RELINK_NEXT = """
MATCH (a:Clause {doc_id: $doc_id})-[r:NEXT]->(:Clause)
DELETE r
WITH count(*) AS _
UNWIND range(0, size($order) - 2) AS i
MATCH (a:Clause {clause_id: $order[i], status: 'active'})
MATCH (b:Clause {clause_id: $order[i + 1], status: 'active'})
MERGE (a)-[:NEXT]->(b)
"""

REPLACE_CHUNKS = """
UNWIND $clause_ids AS cid
MATCH (k:Chunk {clause_id: cid})
DETACH DELETE k
"""

CREATE_CHUNKS = """
UNWIND $chunks AS k
MATCH (c:Clause {clause_id: k.clause_id, status: 'active'})
CREATE (n:Chunk {chunk_id: k.chunk_id})
SET n.clause_id = k.clause_id, n.ord = k.ord, n.text = k.text, n.doc_id = $doc_id
MERGE (c)-[:HAS_CHUNK]->(n)
"""

DELETE_DOC_TABLES = """
MATCH (t:Table {doc_id: $doc_id})
DETACH DELETE t
"""

CREATE_TABLES = """
UNWIND $tables AS t
MATCH (s:Section {section_id: t.section_id})
CREATE (n:Table {table_id: t.table_id})
SET n.doc_id = $doc_id, n.page = t.page, n.caption = t.caption, n.rows_json = t.rows_json,
    n.header_json = t.header_json, n.n_rows = t.n_rows
MERGE (s)-[:HAS_TABLE]->(n)
"""

SUPERSEDE_TRIPLES = """
UNWIND $clause_ids AS cid
MATCH (t:Triple {clause_id: cid, status: 'active'})
SET t.status = $status
"""

MERGE_ENTITIES = """
UNWIND $entities AS e
MERGE (n:Entity {entity_id: e.entity_id})
ON CREATE SET n.name = e.name, n.type = e.type, n.aliases = e.aliases
"""

CREATE_TRIPLES = """
UNWIND $triples AS t
MATCH (c:Clause {clause_id: t.clause_id, status: 'active'})
MERGE (n:Triple {triple_id: t.triple_id, version: c.version})
SET n.clause_id = t.clause_id, n.subject = t.subject, n.predicate = t.predicate,
    n.object = t.object, n.qualifiers_json = t.qualifiers_json, n.confidence = t.confidence,
    n.origin = t.origin, n.status = 'active'
MERGE (n)-[:STATED_IN]->(c)
WITH n, t
OPTIONAL MATCH (se:Entity {entity_id: t.subject_entity})
OPTIONAL MATCH (oe:Entity {entity_id: t.object_entity})
FOREACH (_ IN CASE WHEN se IS NULL THEN [] ELSE [1] END | MERGE (n)-[:SUBJECT]->(se))
FOREACH (_ IN CASE WHEN oe IS NULL THEN [] ELSE [1] END | MERGE (n)-[:OBJECT]->(oe))
"""

CREATE_MENTIONS = """
UNWIND $mentions AS m
MATCH (c:Clause {clause_id: m.clause_id, status: 'active'})
MATCH (e:Entity {entity_id: m.entity_id})
MERGE (c)-[:MENTIONS]->(e)
"""

# Change rows of kg/changes.py: ch.kind is the kind of node the Change is ON (clause, document,
# triple, entity).
CREATE_CHANGES = """
UNWIND $changes AS ch
CREATE (n:Change {seq: ch.seq})
SET n.actor = $actor, n.role = $role, n.at = $at, n.op = ch.op, n.target_id = ch.target_id,
    n.before_json = ch.before_json, n.after_json = ch.after_json, n.reason = $reason
WITH n, ch
OPTIONAL MATCH (c:Clause {clause_id: ch.target_id, version: ch.target_version}) WHERE ch.kind = 'clause'
OPTIONAL MATCH (d:Document {doc_id: ch.target_id}) WHERE ch.kind = 'document'
OPTIONAL MATCH (t:Triple {triple_id: ch.target_id, version: ch.target_version}) WHERE ch.kind = 'triple'
OPTIONAL MATCH (e:Entity {entity_id: ch.target_id}) WHERE ch.kind = 'entity'
WITH n, coalesce(c, d, t, e) AS target
WHERE target IS NOT NULL
MERGE (n)-[:ON]->(target)
"""

# (Re)build REFERS_TO edges from the reference lists stored on active clauses. Run after every
# ingestion so references to documents ingested later resolve then. A target is
# 'document:ID' or 'clause:ID', optionally followed by ' TITLE_KEY' (and ' NUMBER' for a clause)
# when the document was unknown at extraction: the id wins when it exists, else every document
# with that normalized title (a standard's number shared by two standards names both).
RESOLVE_REFERENCES = """
MATCH (c:Clause {status: 'active'})
WHERE c.refs_target IS NOT NULL AND size(c.refs_target) > 0
  AND ($doc_ids IS NULL OR c.doc_id IN $doc_ids OR
       any(t IN c.refs_target WHERE any(d IN $doc_ids WHERE t STARTS WITH 'document:' + d
                                                        OR t STARTS WITH 'clause:' + d + '/')) OR
       any(t IN c.refs_target WHERE any(k IN $title_keys WHERE t ENDS WITH ' ' + k
                                                           OR t CONTAINS ' ' + k + ' ')))
OPTIONAL MATCH (c)-[old:REFERS_TO]->()
DELETE old
WITH DISTINCT c
UNWIND range(0, size(c.refs_target) - 1) AS i
WITH c, split(c.refs_target[i], ' ') AS parts, c.refs_text[i] AS text
WITH c, text, parts[0] AS target, parts[1] AS title_key, parts[2] AS number
CALL (c, target, title_key, number, text) {
  OPTIONAL MATCH (tc:Clause {clause_id: substring(target, 7), status: 'active'})
  WHERE target STARTS WITH 'clause:'
  OPTIONAL MATCH (td:Document {doc_id: substring(target, 9)})
  WHERE target STARTS WITH 'document:'
  WITH c, text, title_key, number, coalesce(tc, td) AS exact
  OPTIONAL MATCH (kd:Document {title_key: title_key})
  WHERE exact IS NULL AND title_key IS NOT NULL
  OPTIONAL MATCH (kc:Clause {clause_id: kd.doc_id + '/' + number, status: 'active'})
  WHERE number IS NOT NULL
  WITH c, text, CASE WHEN exact IS NOT NULL THEN exact WHEN number IS NULL THEN kd ELSE kc END AS t
  WHERE t IS NOT NULL
  MERGE (c)-[r:REFERS_TO]->(t)
  SET r.text = text
  RETURN count(*) AS made
}
RETURN sum(made) AS resolved
"""

KNOWN_DOCUMENTS = "MATCH (d:Document) RETURN d.doc_id AS doc_id, d.title AS title"

# --- reading ------------------------------------------------------------------------------------

COUNT_LABELS = """
CALL db.labels() YIELD label
CALL (label) {
  MATCH (n) WHERE label IN labels(n)
  RETURN count(n) AS n
}
RETURN label, n
"""

COUNT_RELATIONSHIPS = """
CALL db.relationshipTypes() YIELD relationshipType AS type
CALL (type) {
  MATCH ()-[r]->() WHERE type(r) = type
  RETURN count(r) AS n
}
RETURN type, n
"""

COUNT_CLAUSE_STATUS = "MATCH (c:Clause) RETURN c.status AS status, count(*) AS n"

CLAUSE_DETAIL = (
    """
MATCH (c:Clause {clause_id: $clause_id})
WHERE ($version IS NULL AND NOT c.status IN ['superseded', 'pending']) OR c.version = $version
WITH c ORDER BY c.version DESC LIMIT 1
MATCH (d:Document {doc_id: c.doc_id})
"""
    + with_section_path("c", "c, d")
    + """
RETURN c {.*} AS clause, d {.doc_id, .title, .kind, .source_path} AS document,
       """
    + DOC_VERSION
    + """ AS doc_version, section_path
"""
)

CLAUSE_HISTORY = """
MATCH (c:Clause {clause_id: $clause_id})
OPTIONAL MATCH (ch:Change)-[:ON]->(c)
RETURN c.version AS version, c.status AS status, c.sha256 AS sha256, c.created_at AS created_at,
       c.text AS text, collect(ch {.seq, .op, .at, .actor}) AS changes
ORDER BY version
"""

CLAUSE_TRIPLES = """
MATCH (t:Triple)-[:STATED_IN]->(c:Clause {clause_id: $clause_id, version: $version})
RETURN t {.triple_id, .subject, .predicate, .object, .qualifiers_json, .confidence, .origin, .status} AS triple
ORDER BY t.predicate, t.subject
"""

CLAUSE_REFERENCES = """
MATCH (c:Clause {clause_id: $clause_id, version: $version})
OPTIONAL MATCH (c)-[r:REFERS_TO]->(t)
WITH c, collect(CASE WHEN t IS NULL THEN NULL ELSE
  {target: coalesce(t.clause_id, t.doc_id), kind: CASE WHEN t:Clause THEN 'clause' ELSE 'document' END,
   text: r.text} END) AS outgoing
OPTIONAL MATCH (s:Clause {status: 'active'})-[r2:REFERS_TO]->(c)
RETURN outgoing, collect(CASE WHEN s IS NULL THEN NULL ELSE {source: s.clause_id, text: r2.text} END) AS incoming,
       c.refs_target AS declared, c.refs_text AS declared_text
"""

# --- browsing the graph (the web console) --------------------------------------------------------

# Every document with its count of active clauses, by title.
DOCUMENT_LIST = """
MATCH (d:Document)
RETURN d.doc_id AS doc_id, coalesce(d.title, d.doc_id) AS title, d.kind AS kind,
       coalesce(d.version, 1) AS version, d.pages AS pages, d.ingested_at AS ingested_at,
       COUNT { MATCH (c:Clause {doc_id: d.doc_id, status: 'active'}) } AS clauses
ORDER BY title, doc_id
"""

# One document's sections in document order, each with its active clauses in order (the first
# $preview characters of each clause's text); parents by parent_id, so the tree is built by the caller.
DOCUMENT_OUTLINE = """
MATCH (d:Document {doc_id: $doc_id})
RETURN d.doc_id AS doc_id, coalesce(d.title, d.doc_id) AS title, d.kind AS kind,
       coalesce(d.version, 1) AS version, d.pages AS pages, d.ingested_at AS ingested_at,
       COLLECT {
         MATCH (s:Section {doc_id: $doc_id})
         WITH s ORDER BY s.ord
         RETURN s {.section_id, .number, .title, .level, .ord, .parent_id,
                   clauses: COLLECT {
                     MATCH (s)-[:HAS_CLAUSE]->(c:Clause {status: 'active'})
                     WITH c ORDER BY c.ordinal, c.clause_id
                     RETURN c {.clause_id, .number, .version, .page_start, preview: left(c.text, $preview)}
                   }}
       } AS sections
"""

# --- graph-wide searches used by tests and audits ----------------------------------------------

TEXT_PROPERTIES_CONTAINING = """
MATCH (n)
UNWIND keys(n) AS k
WITH n, k, n[k] AS v
WHERE (v IS :: STRING AND v CONTAINS $needle)
   OR (v IS :: LIST<STRING> AND any(x IN v WHERE x CONTAINS $needle))
RETURN labels(n) AS labels, k AS property, elementId(n) AS node
LIMIT $limit
"""

REL_PROPERTIES_CONTAINING = """
MATCH ()-[r]->()
UNWIND keys(r) AS k
WITH r, k, r[k] AS v
WHERE v IS :: STRING AND v CONTAINS $needle
RETURN type(r) AS type, k AS property, elementId(r) AS rel
LIMIT $limit
"""

# --- audit trail (Answer nodes, hash-chained) ----------------------------------------------------

# Locks the chain head for the rest of the transaction and reserves $n seq numbers after it: the
# answers of a group are appended in one transaction, one lock per group rather than per answer,
# and the groups of every process appending to this graph take their turns on the same head, so
# they form one chain. Also returns the graph version (for answers not stamped yet) and which of
# the group's answer ids are already in the trail (a replayed journal, a retried commit).
RESERVE_ANSWER_SEQ = """
MERGE (s:Sequence {name: 'answer'})
ON CREATE SET s.value = 0, s.last_hash = ''
SET s.value = s.value + $n
WITH s
OPTIONAL MATCH (v:Sequence {name: 'change'})
RETURN s.value - $n AS head_seq, s.last_hash AS head_hash, coalesce(v.value, 0) AS graph_version,
       COLLECT { MATCH (a:Answer) WHERE a.answer_id IN $answer_ids RETURN a.answer_id } AS present
"""

# The group's answers, already numbered and hashed in chain order, with their CITES edges; the
# chain head moves to the last of them (or back to where it was when all were present).
CREATE_ANSWERS = """
MATCH (s:Sequence {name: 'answer'})
SET s.value = $head_seq, s.last_hash = $head_hash
WITH s
UNWIND $answers AS row
CREATE (a:Answer {answer_id: row.answer_id})
SET a += row.props, a.seq = row.seq, a.prev_hash = row.prev_hash, a.record_hash = row.record_hash
WITH a, row
CALL (a, row) {
  UNWIND row.citations AS c
  MATCH (cl:Clause {clause_id: c.clause_id, version: c.clause_version})
  CREATE (a)-[r:CITES]->(cl)
  SET r.quote = c.quote, r.quote_start = c.quote_start, r.quote_end = c.quote_end,
      r.support_score = c.support_score, r.verified = c.verified, r.ord = c.ord
}
"""

GET_ANSWER = """
MATCH (a:Answer {answer_id: $answer_id})
OPTIONAL MATCH (a)-[r:CITES]->(c:Clause)
WITH a, r, c ORDER BY r.ord
RETURN a {.*} AS answer,
       collect(CASE WHEN c IS NULL THEN NULL ELSE
         {clause_id: c.clause_id, clause_version: c.version, quote: r.quote, quote_start: r.quote_start,
          quote_end: r.quote_end, support_score: r.support_score, verified: r.verified, ord: r.ord} END) AS citations
"""

ANSWERS_PRESENT = """
MATCH (a:Answer) WHERE a.answer_id IN $answer_ids
RETURN a.answer_id AS answer_id
"""

ANSWERS_CITING_CLAUSE = """
MATCH (a:Answer)-[r:CITES]->(c:Clause {clause_id: $clause_id})
RETURN a.answer_id AS answer_id, a.question AS question, a.status AS status, a.at AS created_at,
       c.version AS clause_version, r.quote AS quote, a.model_id AS model_id
ORDER BY a.seq DESC
LIMIT $limit
"""

# Answers that cited an older version of some clauses than the one active now (all versions of a
# clause with none active), newest first, for impact reports: filtered before the limit, in one read.
ANSWERS_CITING_OLDER = """
UNWIND $refs AS ref
MATCH (a:Answer)-[r:CITES]->(c:Clause {clause_id: ref.clause_id})
WHERE ref.version IS NULL OR c.version < ref.version
RETURN a.answer_id AS answer_id, a.question AS question, a.status AS status, a.at AS created_at,
       c.clause_id AS clause_id, c.version AS clause_version, r.quote AS quote, a.model_id AS model_id
ORDER BY a.seq DESC
LIMIT $limit
"""

# Answers matching an auditor's filters, newest first, a page at a time (seq < $before_seq).
# Every filter is optional (null = any); times compare as ISO-8601 UTC strings, as `at` is stored.
ANSWER_SEARCH = """
MATCH (a:Answer)
WHERE a.seq IS NOT NULL
  AND ($before_seq IS NULL OR a.seq < $before_seq)
  AND ($at_from IS NULL OR a.at >= $at_from)
  AND ($at_to IS NULL OR a.at < $at_to)
  AND ($actor IS NULL OR a.actor = $actor)
  AND ($status IS NULL OR a.status = $status)
  AND ($model_id IS NULL OR a.model_id = $model_id)
  AND ($clause_id IS NULL OR EXISTS { MATCH (a)-[:CITES]->(:Clause {clause_id: $clause_id}) })
WITH a ORDER BY a.seq DESC LIMIT $limit
RETURN a.answer_id AS answer_id, a.seq AS seq, a.at AS at, a.actor AS actor, a.status AS status,
       a.model_id AS model_id, a.graph_version AS graph_version, a.question AS question,
       COLLECT {
         MATCH (a)-[r:CITES]->(c:Clause)
         WITH r, c ORDER BY r.ord
         RETURN {clause_id: c.clause_id, clause_version: c.version}
       } AS citations
ORDER BY seq DESC
"""

# The chain walked in order, a page at a time (seq > $after).
ANSWER_CHAIN_PAGE = """
MATCH (a:Answer) WHERE a.seq > $after
WITH a ORDER BY a.seq LIMIT $limit
OPTIONAL MATCH (a)-[r:CITES]->(c:Clause)
WITH a, r, c ORDER BY r.ord
RETURN a {.*} AS answer,
       collect(CASE WHEN c IS NULL THEN NULL ELSE
         {clause_id: c.clause_id, clause_version: c.version, quote: r.quote, quote_start: r.quote_start,
          quote_end: r.quote_end, support_score: r.support_score, verified: r.verified, ord: r.ord} END) AS citations
ORDER BY answer.seq
"""

ANSWER_CHAIN_HEAD = """
OPTIONAL MATCH (s:Sequence {name: 'answer'})
RETURN coalesce(s.value, 0) AS seq, coalesce(s.last_hash, '') AS last_hash
"""

# --- evidence for the answer verifier (kg/evidence.py) --------------------------------------------

# Everything the verifier needs about one clause version `c`: document, section path, triples of
# that version (with the types of the entities they link, so parties are known as parties), and
# the tables an answer citing it may quote: those of its own section, and appendix tables (a
# section 附表1 without clauses of its own) that the clause names ("见本手册附表1").
_EVIDENCE_RETURN = (
    """
OPTIONAL MATCH (d:Document {doc_id: c.doc_id})
"""
    + with_section_path("c", "key, c, d")
    + """
RETURN key, c {.clause_id, .version, .status, .doc_id, .number, .text, .page_start, .page_end} AS clause,
       """
    + DOC_VERSION
    + """ AS doc_version, d.title AS doc_title, section_path,
       COLLECT {
         MATCH (t:Triple)-[:STATED_IN]->(c)
         WHERE coalesce(t.status, 'active') <> 'rejected'
         OPTIONAL MATCH (t)-[:SUBJECT]->(se:Entity)
         OPTIONAL MATCH (t)-[:OBJECT]->(oe:Entity)
         WITH t, head(collect(se.type)) AS st, head(collect(oe.type)) AS ot
         ORDER BY t.predicate, t.subject, t.object
         RETURN t {.subject, .predicate, .object, .qualifiers_json, subject_type: st, object_type: ot,
                   asserted: coalesce(t.asserted, false)}
       } AS triples,
       COLLECT {
         MATCH (s:Section {doc_id: c.doc_id})-[:HAS_TABLE]->(tb:Table)
         WHERE s.section_id = c.section_id
            OR (s.number STARTS WITH '附' AND c.text CONTAINS s.number
                AND NOT EXISTS { (s)-[:HAS_CLAUSE]->(:Clause {status: 'active'}) })
         RETURN tb {.table_id, .caption, .header_json, .rows_json} AS tb ORDER BY tb.table_id
       } AS tables
"""
)

# The latest version of each id: the active one, else the newest (superseded/retired) one; a
# pending version (the source's text waiting behind a hand edit) only when there is nothing else.
EVIDENCE_LATEST = (
    """
UNWIND $clause_ids AS key
CALL (key) {
  MATCH (c:Clause {clause_id: key})
  RETURN c
  ORDER BY CASE c.status WHEN 'active' THEN 0 WHEN 'pending' THEN 2 ELSE 1 END, c.version DESC
  LIMIT 1
}
"""
    + _EVIDENCE_RETURN
)

# Exact versions, for audit traces: $refs is a list of {clause_id, version}.
EVIDENCE_VERSIONS = (
    """
UNWIND $refs AS key
MATCH (c:Clause {clause_id: key.clause_id, version: key.version})
"""
    + _EVIDENCE_RETURN
)

# Every active clause with its evidence: what the serving process keeps in memory so that
# verifying an answer reads nothing in the common case (kg/evidence.py, SnapshotEvidence).
EVIDENCE_ACTIVE = (
    """
MATCH (c:Clause {status: 'active'})
WITH c.clause_id AS key, c
"""
    + _EVIDENCE_RETURN
)

# --- hybrid retrieval (serving/retrieval) ---------------------------------------------------------

# The terms the graph defines (本手册所称计量周期，是指… -> 计量周期), for the retrieval tokenizer's
# user dictionary. Only concepts, and only short ones: search mode splits a user word into its
# dictionary 2- and 3-grams only, so a long party name kept whole (县级以上人民政府财政部门) would
# hide the 4-character words inside it (人民政府) from a question.
DEFINED_TERMS = """
MATCH (e:Entity {type: 'concept'})
WHERE size(e.name) >= 2 AND size(e.name) <= $max_chars
RETURN DISTINCT e.name AS name
ORDER BY name
"""

# Every active clause with what retrieval serves from its in-process snapshot (kg/snapshot.py):
# provenance (DOC_VERSION), section path and the chunks of long clauses.
SNAPSHOT_CLAUSES = (
    """
MATCH (c:Clause {status: 'active'})
OPTIONAL MATCH (d:Document {doc_id: c.doc_id})
"""
    + with_section_path("c", "c, d")
    + """
RETURN c.clause_id AS clause_id, c.version AS version, c.doc_id AS doc_id,
       coalesce(d.title, c.doc_id) AS doc_title, """
    + DOC_VERSION
    + """ AS doc_version,
       c.number AS number, c.text AS text, c.page_start AS page_start, c.page_end AS page_end,
       section_path,
       COLLECT {
         MATCH (c)-[:HAS_CHUNK]->(k:Chunk)
         RETURN k {.ord, .text} AS chunk ORDER BY k.ord
       } AS chunks
ORDER BY c.doc_id, c.ordinal, c.clause_id
"""
)

# Graph neighbours of every active clause: the clauses it refers to, the previous and next clause
# of its section, and up to $per_clause clauses sharing a rare entity (one mentioned by at most
# $max_entity_clauses active clauses; 企业 or 合同 relate everything and so nothing).
SNAPSHOT_NEIGHBOURS = """
MATCH (c:Clause {status: 'active'})
CALL (c) {
  MATCH (c)-[:REFERS_TO]->(t:Clause {status: 'active'})
  WHERE t.clause_id <> c.clause_id
  RETURN t.clause_id AS target, 0 AS prio, 0 AS shared
  UNION ALL
  MATCH (c)-[:NEXT]-(t:Clause {status: 'active'})
  WHERE t.section_id = c.section_id
  RETURN t.clause_id AS target, 1 AS prio, 0 AS shared
  UNION ALL
  MATCH (c)-[:MENTIONS]->(e:Entity)<-[:MENTIONS]-(t:Clause {status: 'active'})
  WHERE t.clause_id <> c.clause_id
    AND COUNT { (e)<-[:MENTIONS]-(:Clause {status: 'active'}) } <= $max_entity_clauses
  WITH t, count(DISTINCT e) AS shared
  ORDER BY shared DESC, t.clause_id
  LIMIT $per_clause
  RETURN t.clause_id AS target, 2 AS prio, shared
}
WITH c, target, min(prio) AS prio, max(shared) AS shared
ORDER BY c.clause_id, prio, shared DESC, target
RETURN c.clause_id AS clause_id, collect(target) AS targets
"""

# --- dataset generation (training/datagen) --------------------------------------------------------

# Every document with its sections in document order and each section's path from the document
# (with_section_path), so clause section paths and the document outlines come from one read.
DATAGEN_DOCUMENTS = (
    """
MATCH (d:Document)
RETURN d.doc_id AS doc_id, coalesce(d.title, d.doc_id) AS title,
       COLLECT {
         MATCH (s:Section {doc_id: d.doc_id})
"""
    + with_section_path("s", "d, s")
    + """
         WHERE size(section_path) > 0
         RETURN {section_id: s.section_id, ord: s.ord, path: section_path} AS section ORDER BY s.ord
       } AS sections
ORDER BY doc_id
"""
)

# The active clauses of a batch of documents with what a QA generator needs: the triples of the
# active version, the active clauses they refer to, and the previous/next clause of the same section.
DATAGEN_CLAUSES = """
UNWIND $doc_ids AS doc_id
MATCH (c:Clause {doc_id: doc_id, status: 'active'})
RETURN c.clause_id AS clause_id, c.version AS version, c.doc_id AS doc_id, c.number AS number,
       c.ordinal AS ordinal, c.text AS text, c.section_id AS section_id,
       c.page_start AS page_start, c.page_end AS page_end, c.items_json AS items_json,
       COLLECT {
         MATCH (t:Triple {status: 'active'})-[:STATED_IN]->(c)
         WITH t ORDER BY t.predicate, t.subject, t.object
         RETURN t {.subject, .predicate, .object, .qualifiers_json}
       } AS triples,
       COLLECT {
         MATCH (c)-[:REFERS_TO]->(r:Clause {status: 'active'})
         WHERE r.clause_id <> c.clause_id
         RETURN DISTINCT r.clause_id AS target ORDER BY target
       } AS refers_to,
       COLLECT {
         MATCH (c)-[:NEXT]-(n:Clause {status: 'active'})
         WHERE n.section_id = c.section_id AND n.clause_id <> c.clause_id
         WITH DISTINCT n ORDER BY n.ordinal, n.clause_id
         RETURN n.clause_id AS neighbour
       } AS neighbours
ORDER BY doc_id, c.ordinal, c.clause_id
"""

# The tables of a batch of documents with the section they sit in.
DATAGEN_TABLES = """
UNWIND $doc_ids AS doc_id
MATCH (s:Section)-[:HAS_TABLE]->(t:Table {doc_id: doc_id})
RETURN t.table_id AS table_id, t.doc_id AS doc_id, s.section_id AS section_id, t.page AS page,
       t.caption AS caption, t.header_json AS header_json, t.rows_json AS rows_json
ORDER BY doc_id, table_id
"""

# The clause ids the change log touched after graph version $since: clause add/update/retire,
# and edits of a triple (a Change ON a Triple counts for the clause the triple is stated in).
DATAGEN_CHANGED_SINCE = """
MATCH (ch:Change) WHERE ch.seq > $since
OPTIONAL MATCH (ch)-[:ON]->(c:Clause)
OPTIONAL MATCH (ch)-[:ON]->(:Triple)-[:STATED_IN]->(tc:Clause)
WITH coalesce(c.clause_id, tc.clause_id, CASE WHEN ch.op STARTS WITH 'clause.' THEN ch.target_id END)
     AS clause_id
WHERE clause_id IS NOT NULL
RETURN DISTINCT clause_id
ORDER BY clause_id
"""

# --- model registry (kg/registry.py) -------------------------------------------------------------

_MODEL_FIELDS = (
    "m {.model_id, .kind, .base_path, .adapter_path, .graph_version, .dataset_hash, .parent_id, "
    ".metrics_json, .created_at, .active, .activated_at} AS m"
)

MODEL_REGISTER = (
    """
MERGE (m:ModelVersion {model_id: $m.model_id})
ON CREATE SET m.created_at = $m.created_at, m.active = false
SET m.kind = $m.kind, m.base_path = $m.base_path, m.adapter_path = $m.adapter_path,
    m.graph_version = $m.graph_version, m.dataset_hash = $m.dataset_hash, m.parent_id = $m.parent_id,
    m.metrics_json = $m.metrics_json
WITH m
OPTIONAL MATCH (p:ModelVersion {model_id: $m.parent_id})
FOREACH (_ IN CASE WHEN p IS NULL THEN [] ELSE [1] END | MERGE (m)-[:CONTINUES]->(p))
RETURN """
    + _MODEL_FIELDS
)

MODEL_SET_METRICS = "MATCH (m:ModelVersion {model_id: $model_id}) SET m.metrics_json = $metrics_json RETURN " + _MODEL_FIELDS

MODEL_GET = "MATCH (m:ModelVersion {model_id: $model_id}) RETURN " + _MODEL_FIELDS

MODEL_LIST = "MATCH (m:ModelVersion) RETURN " + _MODEL_FIELDS + " ORDER BY m.created_at, m.model_id"

MODEL_ACTIVE = "MATCH (m:ModelVersion {active: true}) RETURN " + _MODEL_FIELDS + " LIMIT 1"

# One statement, one transaction: clear every other active flag and set this one.
MODEL_ACTIVATE = (
    """
MATCH (m:ModelVersion {model_id: $model_id})
OPTIONAL MATCH (o:ModelVersion {active: true}) WHERE o <> m
SET o.active = false
WITH DISTINCT m
SET m.active = true, m.activated_at = $at
RETURN """
    + _MODEL_FIELDS
)

MODEL_DEACTIVATE = "MATCH (m:ModelVersion {active: true}) SET m.active = false"

# --- jobs (kg/jobs.py): retraining jobs and the single-trainer lock ----------------------------------

JOB_SCHEMA: tuple[str, ...] = (
    "CREATE CONSTRAINT job_id IF NOT EXISTS FOR (n:Job) REQUIRE n.job_id IS UNIQUE",
    "CREATE CONSTRAINT lock_name IF NOT EXISTS FOR (n:Lock) REQUIRE n.name IS UNIQUE",
)

_JOB_FIELDS = (
    "j {.job_id, .kind, .state, .stage, .stages_done, .progress, .since_graph_version, .params_json, "
    ".result_json, .history_json, .error, .cancel_requested, .worker_pid, .worker_host, .actor, "
    ".created_at, .updated_at, .started_at, .finished_at} AS j"
)

JOB_CREATE = (
    """
CREATE (j:Job {job_id: $j.job_id, kind: $j.kind, state: $j.state, stage: $j.stage, stages_done: [],
               progress: 0.0, since_graph_version: $j.since_graph_version, params_json: $j.params_json,
               result_json: '{}', history_json: '[]', cancel_requested: false, actor: $j.actor,
               created_at: $j.created_at, updated_at: $j.created_at})
RETURN """
    + _JOB_FIELDS
)

JOB_GET = "MATCH (j:Job {job_id: $job_id}) RETURN " + _JOB_FIELDS

# Newest first; $state null = any state.
JOB_LIST = (
    "MATCH (j:Job) WHERE $state IS NULL OR j.state = $state RETURN "
    + _JOB_FIELDS
    + " ORDER BY j.created_at DESC, j.job_id DESC LIMIT $limit"
)

# Every field of $set is written as given (null removes it); the caller decides which fields move.
JOB_UPDATE = "MATCH (j:Job {job_id: $job_id}) SET j += $set RETURN " + _JOB_FIELDS

# Asking a job to stop: its worker sees the flag between stages and between training steps.
JOB_REQUEST_CANCEL = (
    "MATCH (j:Job {job_id: $job_id}) SET j.cancel_requested = true, j.updated_at = $at RETURN " + _JOB_FIELDS
)

JOB_CANCEL_REQUESTED = "MATCH (j:Job {job_id: $job_id}) RETURN j.cancel_requested AS cancel"

# The trainer lock: one Lock node per name (unique constraint). The first SET takes the node's
# write lock before the holder is read (Neo4j's documented way to avoid a lost update), so of two
# jobs claiming at once the second reads the holder only after the first committed. A holder whose
# job is over (or gone) no longer holds it.
LOCK_CLAIM = """
MERGE (l:Lock {name: $name})
SET l.claims = coalesce(l.claims, 0) + 1
WITH l
OPTIONAL MATCH (h:Job {job_id: l.holder})
WITH l, l.holder IS NULL OR l.holder = $holder OR h IS NULL
        OR h.state IN ['succeeded', 'failed', 'cancelled', 'waiting_approval'] AS free
SET l.holder = CASE WHEN free THEN $holder ELSE l.holder END,
    l.since = CASE WHEN free THEN $at ELSE l.since END
RETURN l.holder AS holder
"""

LOCK_RELEASE = "MATCH (l:Lock {name: $name}) WHERE l.holder = $holder SET l.holder = null, l.since = null"

LOCK_HOLDER = "OPTIONAL MATCH (l:Lock {name: $name}) RETURN l.holder AS holder, l.since AS since"

# The clauses the change log touched after graph version $since, with the ops that touched them
# (in seq order) and whether an active version exists now: what an incremental retrain regenerates
# (changed, new) or turns into refusals (retired).
RETRAIN_DELTA = """
MATCH (ch:Change) WHERE ch.seq > $since
OPTIONAL MATCH (ch)-[:ON]->(c:Clause)
OPTIONAL MATCH (ch)-[:ON]->(:Triple)-[:STATED_IN]->(tc:Clause)
WITH ch, coalesce(c.clause_id, tc.clause_id, CASE WHEN ch.op STARTS WITH 'clause.' THEN ch.target_id END)
     AS clause_id
WHERE clause_id IS NOT NULL
WITH clause_id, ch ORDER BY ch.seq
WITH clause_id, collect(ch.op) AS ops, max(ch.seq) AS last_seq
OPTIONAL MATCH (a:Clause {clause_id: clause_id, status: 'active'})
RETURN clause_id, ops, last_seq, a IS NOT NULL AS active, a.version AS version
ORDER BY clause_id
"""

# --- benchmarks (bench/bench_peer.py) --------------------------------------------------------------

# neo4j-graphrag's HybridRetriever searches its own vector and full-text indexes over one label: the
# bench gives it a copy of the active clauses (same text as our index units, our embeddings) on
# :PeerClause nodes, never properties on our Clause nodes, and removes them afterwards.
PEER_CLAUSES_UPSERT = """
UNWIND $rows AS r
MERGE (p:PeerClause {clause_id: r.clause_id})
SET p.text = r.text, p.embedding = r.embedding
"""

PEER_CLAUSES_DROP = "MATCH (p:PeerClause) DETACH DELETE p"

# --- knowledge managers' edits (kg/edits.py) -------------------------------------------------------
#
# Every edit runs in one write transaction with its Change (kg/changes.py). The state an edit is
# checked against is read inside that transaction; "the version the editor saw" is the clause
# version for clauses and a revision counter ``rev`` (1 when never edited) for triples and entities.

# The current version of a clause: the active one, else the newest (retired) one.
EDIT_CLAUSE_STATE = """
MATCH (c:Clause {clause_id: $clause_id})
WITH c ORDER BY CASE c.status WHEN 'active' THEN 0 WHEN 'pending' THEN 2 ELSE 1 END, c.version DESC LIMIT 1
OPTIONAL MATCH (s:Section {section_id: c.section_id})
RETURN c {.clause_id, .version, .status, .doc_id, .number, .ordinal, .text, .sha256, .section_id,
          .page_start, .page_end, .items_json} AS clause,
       coalesce(s.title, '') AS section_title
"""

# The active version of each of $clause_ids (ids without one are left out): one read for all.
EDIT_ACTIVE_VERSIONS = """
UNWIND $clause_ids AS cid
MATCH (c:Clause {clause_id: cid, status: 'active'})
RETURN c.clause_id AS clause_id, c.version AS version
"""

# One stored version of a clause (a revert of a text edit brings its text back).
EDIT_CLAUSE_VERSION = """
MATCH (c:Clause {clause_id: $clause_id, version: $version})
RETURN c.text AS text, c.items_json AS items_json
"""

# A new version of an active clause with the editor's text: the old version is kept behind
# SUPERSEDES (status superseded), the section and the NEXT chain point at the new one. The new
# version number is one above every stored version (a pending one included); ``source_sha256``
# keeps the hash of the text the source file last gave, so re-ingestion can tell an unchanged
# source (keep the edit) from a changed one (a conflict).
EDIT_CLAUSE_NEW_VERSION = """
MATCH (old:Clause {clause_id: $clause_id, version: $version, status: 'active'})
CALL (old) {
  MATCH (x:Clause {clause_id: old.clause_id})
  RETURN max(x.version) AS top
}
CREATE (n:Clause {clause_id: old.clause_id, version: top + 1})
SET n += old {.doc_id, .number, .ordinal, .page_start, .page_end, .section_id, .doc_version},
    n.source_sha256 = coalesce(old.source_sha256, old.sha256),
    n.text = $text, n.sha256 = $sha256, n.items_json = $items_json, n.refs_target = $refs_target,
    n.refs_text = $refs_text, n.status = 'active', n.created_at = $at, n.origin = 'editor',
    old.status = 'superseded', old.superseded_at = $at
MERGE (n)-[:SUPERSEDES]->(old)
WITH n, old
CALL (n, old) {
  MATCH (s:Section)-[:HAS_CLAUSE]->(old)
  MERGE (s)-[:HAS_CLAUSE]->(n)
}
CALL (n, old) {
  MATCH (p:Clause)-[r:NEXT]->(old)
  MERGE (p)-[:NEXT]->(n)
  DELETE r
}
CALL (n, old) {
  MATCH (old)-[r:NEXT]->(x:Clause)
  MERGE (n)-[:NEXT]->(x)
  DELETE r
}
RETURN n.version AS version
"""

EDIT_CLAUSE_SET_STATUS = """
MATCH (c:Clause {clause_id: $clause_id, version: $version})
SET c.status = $status, c.retired_at = CASE WHEN $status = 'retired' THEN $at ELSE null END,
    c.retired_by_edit = CASE WHEN $status = 'retired' THEN true ELSE null END
"""

# The active clauses of a document in reading order (relinking NEXT after a retire or restore).
EDIT_DOCUMENT_ORDER = """
MATCH (c:Clause {doc_id: $doc_id, status: 'active'})
RETURN c.clause_id AS clause_id ORDER BY c.ordinal, c.clause_id
"""

# Triples of one clause version back to active (restoring a retired clause).
EDIT_REACTIVATE_TRIPLES = """
MATCH (t:Triple {clause_id: $clause_id, version: $version, status: $from_status})
SET t.status = 'active'
"""

# The triples an editor set on one clause version (carried to the clause's next text version when
# the new text still states their values).
EDIT_EDITOR_TRIPLES = """
MATCH (t:Triple {clause_id: $clause_id, version: $version, origin: 'editor', status: 'active'})
RETURN t {.triple_id, .subject, .predicate, .object, .qualifiers_json, .asserted, .assert_reason} AS triple
ORDER BY t.triple_id
"""

# The current state of a triple: its version on the active clause (else the newest one).
_EDIT_TRIPLE_FIELDS = (
    "t {.triple_id, .version, .clause_id, .subject, .predicate, .object, .qualifiers_json, .confidence, "
    ".origin, .status, .confirmed, .asserted, .assert_reason, rev: coalesce(t.rev, 1)} AS triple"
)

EDIT_TRIPLE_STATE = (
    """
MATCH (t:Triple {triple_id: $triple_id})-[:STATED_IN]->(c:Clause)
WITH t, c ORDER BY CASE c.status WHEN 'active' THEN 0 WHEN 'pending' THEN 2 ELSE 1 END, t.version DESC LIMIT 1
RETURN """
    + _EDIT_TRIPLE_FIELDS
    + """, c.text AS clause_text, c.status AS clause_status, c.version AS clause_version
"""
)

# A triple set by an editor on the active version of its clause (triple.add), linked to the
# entities of its subject and object where the graph knows them.
EDIT_CREATE_TRIPLE = (
    """
MATCH (c:Clause {clause_id: $clause_id, status: 'active'})
CREATE (t:Triple {triple_id: $triple_id, version: c.version})
SET t.clause_id = $clause_id, t.subject = $subject, t.predicate = $predicate, t.object = $object,
    t.qualifiers_json = $qualifiers_json, t.confidence = 1.0, t.origin = 'editor', t.status = 'active',
    t.confirmed = true, t.asserted = $asserted, t.assert_reason = $assert_reason, t.rev = 1
MERGE (t)-[:STATED_IN]->(c)
WITH t
CALL (t) {
  OPTIONAL MATCH (se:Entity) WHERE se.entity_id IN $subject_entities
  OPTIONAL MATCH (oe:Entity) WHERE oe.entity_id IN $object_entities
  FOREACH (_ IN CASE WHEN se IS NULL THEN [] ELSE [1] END | MERGE (t)-[:SUBJECT]->(se))
  FOREACH (_ IN CASE WHEN oe IS NULL THEN [] ELSE [1] END | MERGE (t)-[:OBJECT]->(oe))
}
RETURN """
    + _EDIT_TRIPLE_FIELDS
)

# Set the editable properties of one triple version and bump its revision.
EDIT_SET_TRIPLE = (
    """
MATCH (t:Triple {triple_id: $triple_id, version: $version})
SET t += $props, t.rev = coalesce(t.rev, 1) + 1
RETURN """
    + _EDIT_TRIPLE_FIELDS
)

EDIT_ENTITY_STATE = """
MATCH (e:Entity {entity_id: $entity_id})
RETURN e {.entity_id, .name, .type, .aliases, .status, .merged_into, rev: coalesce(e.rev, 1)} AS entity,
       [(c:Clause)-[:MENTIONS]->(e) | [c.clause_id, c.version]] AS mentions,
       [(t:Triple)-[:SUBJECT]->(e) | [t.triple_id, t.version]] AS subject_of,
       [(t:Triple)-[:OBJECT]->(e) | [t.triple_id, t.version]] AS object_of
"""

EDIT_SET_ENTITY = """
MATCH (e:Entity {entity_id: $entity_id})
SET e += $props, e.rev = coalesce(e.rev, 1) + 1
RETURN e {.entity_id, .name, .type, .aliases, .status, .merged_into, rev: e.rev} AS entity
"""

# Move the MENTIONS / SUBJECT / OBJECT edges given as [id, version] pairs from entity $from_id
# to entity $to_id (merging two entities, and undoing a merge). Edges the target already has
# are kept once; an undo passes ``drop`` = the pairs whose edge to $from_id existed before the
# merge and must stay.
EDIT_MOVE_ENTITY_EDGES = """
MATCH (src:Entity {entity_id: $from_id}), (dst:Entity {entity_id: $to_id})
CALL (src, dst) {
  UNWIND $mentions AS m
  MATCH (c:Clause {clause_id: m[0], version: m[1]})-[r:MENTIONS]->(src)
  MERGE (c)-[:MENTIONS]->(dst)
  WITH r, m WHERE NOT m IN $keep_mentions
  DELETE r
}
CALL (src, dst) {
  UNWIND $subject_of AS m
  MATCH (t:Triple {triple_id: m[0], version: m[1]})-[r:SUBJECT]->(src)
  MERGE (t)-[:SUBJECT]->(dst)
  WITH r, m WHERE NOT m IN $keep_subject_of
  DELETE r
}
CALL (src, dst) {
  UNWIND $object_of AS m
  MATCH (t:Triple {triple_id: m[0], version: m[1]})-[r:OBJECT]->(src)
  MERGE (t)-[:OBJECT]->(dst)
  WITH r, m WHERE NOT m IN $keep_object_of
  DELETE r
}
"""

EDIT_CHANGE = """
MATCH (ch:Change {seq: $seq})
RETURN ch {.seq, .op, .target_id, .before_json, .after_json, .actor, .role, .at, .reason} AS change
"""

# Every Change of one id (a clause, triple, entity or document), oldest first.
EDIT_HISTORY = """
MATCH (ch:Change {target_id: $target_id})
RETURN ch {.seq, .op, .target_id, .before_json, .after_json, .actor, .role, .at, .reason} AS change
ORDER BY ch.seq
"""

# The clause ids an edit target touches: the clause itself, the clause a triple is stated in, or
# the active clauses that mention an entity.
EDIT_TARGET_CLAUSES = """
OPTIONAL MATCH (c:Clause {clause_id: $target_id})
WITH collect(DISTINCT c.clause_id) AS own
OPTIONAL MATCH (t:Triple {triple_id: $target_id})
WITH own, collect(DISTINCT t.clause_id) AS stated
OPTIONAL MATCH (m:Clause {status: 'active'})-[:MENTIONS]->(:Entity {entity_id: $target_id})
WITH own, stated, collect(DISTINCT m.clause_id) AS mentioning
RETURN own + stated + mentioning AS clause_ids
"""

# The newest Change of any of these ids, or of a triple stated in one of these clauses (null
# when none).
EDIT_LAST_CHANGE = """
CALL () {
  MATCH (ch:Change) WHERE ch.target_id IN $target_ids
  RETURN ch.seq AS seq
  UNION
  MATCH (ch:Change)-[:ON]->(:Triple)-[:STATED_IN]->(c:Clause) WHERE c.clause_id IN $target_ids
  RETURN ch.seq AS seq
}
RETURN max(seq) AS seq
"""
