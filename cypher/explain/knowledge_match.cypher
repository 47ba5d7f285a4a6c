// mode: read
// params: $user, $item, $limit
// The user's fused knowledge (`kgp extract --round knowledge`: LLM-generated text from the user's training
// behaviour) that matches the recommended item: each phrase of likes / dislikes / contexts / leanings with a
// word (stemmed to its first 5 letters) found in the item's title, intents or KG entity names. Graph evidence
// in generated words, not the model's reason. A matching dislike is shown too (it argues against the item).
MATCH (u:User {id: $user})-[:HAS_KNOWLEDGE]->(k:Knowledge {status: 'ok'}), (i:Item {id: $item})
OPTIONAL MATCH (i)-[:SATISFIES]->(n:Intent)
WITH u, k, i, collect(DISTINCT toLower(n.name)) AS intents
OPTIONAL MATCH (i)-[:FACT]-(e)
WITH u, k, i, intents, collect(DISTINCT toLower(coalesce(e.label, e.title, ''))) AS facts
WITH u, k, i, toLower(coalesce(i.title, '')) + ' | ' + reduce(s = '', x IN intents + facts | s + ' | ' + x) AS described
UNWIND [['likes', 0, k.likes], ['leanings', 1, k.leanings], ['contexts', 2, k.contexts],
        ['dislikes', 3, k.dislikes]] AS field
UNWIND coalesce(field[2], []) AS phrase
WITH u, k, field[0] AS field, field[1] AS fieldOrder, phrase, described,
     [w IN split(replace(replace(replace(toLower(phrase), ',', ' '), '-', ' '), '/', ' '), ' ')
      WHERE size(w) >= 4 AND NOT w IN ['film', 'films', 'movie', 'movies', 'with', 'from', 'that', 'this',
                                       'their', 'about', 'like', 'likes', 'style', 'good', 'great', 'items',
                                       'product', 'products', 'things', 'stuff', 'genre', 'genres']] AS words
WITH u, k, field, fieldOrder, phrase, [w IN words WHERE described CONTAINS left(w, 5)] AS matched
WHERE size(matched) > 0
MATCH p = (u)-[:HAS_KNOWLEDGE]->(k)
RETURN p, field, phrase, matched, k.model AS model
ORDER BY fieldOrder, size(matched) DESC, phrase
LIMIT $limit
