// The tool shapes of a request, checked strictly per dialect, so a runner
// that sends a tools / tool_choice / parallel-calls field or a tool turn in
// the wrong dialect's shape gets a 400 naming it instead of a reply. Each
// check returns null or { message, param } (param: the offending path).
//
// What is checked mirrors the real APIs' own refusals (the messages quote
// them where they are known): unknown keys in a tool or a tool turn,
// tool_choice or parallel_tool_calls without tools, a forced tool that is
// not offered, a tool result answering no call, a call left without a
// result, and (Anthropic) results that are not first in the next user
// message or a conversation with tool blocks but no tools.

const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const ANTHROPIC_ID_RE = /^[A-Za-z0-9_-]+$/;
const CHOICES = ['none', 'auto', 'required'];

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const bad = (param, message) => ({ param, message });
const extra = (obj, allowed) => Object.keys(obj).find((k) => !allowed.includes(k));

/*
 * The OpenAI tool_choice and parallel_tool_calls, given the tools' names:
 * both only with tools, and a forced function among them, in the dialect's
 * shape (Responses {type, name}; chat, {type, function: {name}}).
 */
function openaiChoice(b, names, chat) {
    const tc = b.tool_choice;
    if (tc !== undefined) {
        if (names.length === 0)
            return bad('tool_choice', "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.");
        const forced = chat ? tc?.function?.name : tc?.name;
        const keysOk = isObj(tc) && !extra(tc, chat ? ['type', 'function'] : ['type', 'name']) &&
            (!chat || (isObj(tc.function) && !extra(tc.function, ['name'])));
        if (!CHOICES.includes(tc) && !(keysOk && tc.type === 'function' && typeof forced === 'string'))
            return bad('tool_choice', `Invalid value for 'tool_choice': expected "none", "auto", "required" or ${chat ? '{"type": "function", "function": {"name": ...}}' : '{"type": "function", "name": ...}'}.`);
        if (typeof forced === 'string' && !names.includes(forced))
            return bad('tool_choice', `Tool choice '${forced}' not found in 'tools' parameter.`);
    }
    const p = b.parallel_tool_calls;
    if (p !== undefined && typeof p !== 'boolean')
        return bad('parallel_tool_calls', "Invalid type for 'parallel_tool_calls': expected a boolean.");
    if (p !== undefined && names.length === 0)
        return bad('parallel_tool_calls', "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are specified.");
    return null;
}

/* The function tools' list (Responses: flat; chat: under `function`): their names, or a problem. */
function openaiTools(tools, chat) {
    const names = [];
    if (tools === undefined) return { names };
    if (!Array.isArray(tools)) return { problem: bad('tools', "Invalid type for 'tools': expected an array.") };
    for (const [i, t] of tools.entries()) {
        const p = `tools[${i}]`;
        const shape = chat ? '{type: "function", function: {name, description, parameters}}' : '{type: "function", name, description, parameters, strict}';
        if (!isObj(t)) return { problem: bad(p, `Invalid type for '${p}': expected an object.`) };
        const k = extra(t, chat ? ['type', 'function'] : ['type', 'name', 'description', 'parameters', 'strict']);
        if (k) return { problem: bad(`${p}.${k}`, `Unknown parameter: '${p}.${k}'. This API's tools are ${shape}.`) };
        if (t.type !== 'function') return { problem: bad(`${p}.type`, `Invalid value for '${p}.type': expected "function".`) };
        const fn = chat ? t.function : t;
        const fp = chat ? `${p}.function` : p;
        if (!isObj(fn)) return { problem: bad(fp, `Missing required parameter: '${fp}'. This API's tools are ${shape}.`) };
        const k2 = chat && extra(fn, ['name', 'description', 'parameters', 'strict']);
        if (k2) return { problem: bad(`${fp}.${k2}`, `Unknown parameter: '${fp}.${k2}'.`) };
        if (typeof fn.name !== 'string' || !NAME_RE.test(fn.name))
            return { problem: bad(`${fp}.name`, `Invalid '${fp}.name': string does not match pattern '^[a-zA-Z0-9_-]{1,64}$'.`) };
        if (fn.description !== undefined && typeof fn.description !== 'string')
            return { problem: bad(`${fp}.description`, `Invalid type for '${fp}.description': expected a string.`) };
        if ((!chat || fn.parameters !== undefined) && !isObj(fn.parameters))
            return { problem: bad(`${fp}.parameters`, `Invalid type for '${fp}.parameters': expected a JSON schema object.`) };
        if (fn.strict !== undefined && fn.strict !== null && typeof fn.strict !== 'boolean')
            return { problem: bad(`${fp}.strict`, `Invalid type for '${fp}.strict': expected a boolean.`) };
        if (names.includes(fn.name)) return { problem: bad(p, `Duplicate tool name '${fn.name}'.`) };
        names.push(fn.name);
    }
    return { names };
}

// ---- OpenAI Responses ----

/*
 * input items: messages, function_call {call_id, name, arguments (a
 * string)}, function_call_output {call_id, output} answering an earlier
 * call; every call answered.
 */
function responsesInput(input) {
    if (!Array.isArray(input)) return null;
    const calls = new Map();
    for (const [i, it] of input.entries()) {
        const p = `input[${i}]`;
        if (!isObj(it)) return bad(p, `Invalid type for '${p}': expected an object.`);
        const type = it.type ?? (it.role !== undefined ? 'message' : undefined);
        if (type === 'message') {
            if (!['user', 'assistant', 'system', 'developer'].includes(it.role))
                return bad(`${p}.role`, `Invalid value for '${p}.role': expected user, assistant, system or developer.`);
            if (typeof it.content !== 'string' && !Array.isArray(it.content))
                return bad(`${p}.content`, `Invalid type for '${p}.content': expected a string or an array.`);
        } else if (type === 'function_call') {
            const k = extra(it, ['type', 'id', 'call_id', 'name', 'arguments', 'status']);
            if (k) return bad(`${p}.${k}`, `Unknown parameter: '${p}.${k}'. A function_call item is {type, call_id, name, arguments}.`);
            if (typeof it.call_id !== 'string' || it.call_id === '') return bad(`${p}.call_id`, `Missing required parameter: '${p}.call_id'.`);
            if (typeof it.name !== 'string' || it.name === '') return bad(`${p}.name`, `Missing required parameter: '${p}.name'.`);
            if (typeof it.arguments !== 'string')
                return bad(`${p}.arguments`, `Invalid type for '${p}.arguments': expected a string, but got ${typeof it.arguments} instead.`);
            if (calls.has(it.call_id)) return bad(`${p}.call_id`, `Duplicate function call id '${it.call_id}'.`);
            calls.set(it.call_id, false);
        } else if (type === 'function_call_output') {
            const k = extra(it, ['type', 'id', 'call_id', 'output', 'status']);
            if (k) return bad(`${p}.${k}`, `Unknown parameter: '${p}.${k}'. A function_call_output item is {type, call_id, output}.`);
            if (typeof it.output !== 'string') return bad(`${p}.output`, `Invalid type for '${p}.output': expected a string.`);
            if (!calls.has(it.call_id)) return bad(p, `No tool call found for function call output with call_id ${it.call_id}.`);
            if (calls.get(it.call_id)) return bad(p, `Duplicate function call output for call_id ${it.call_id}.`);
            calls.set(it.call_id, true);
        } else return bad(`${p}.type`, `Invalid value for '${p}.type': the mock knows message, function_call and function_call_output items.`);
    }
    for (const [id, answered] of calls) if (!answered) return bad('input', `No tool output found for function call ${id}.`);
    return null;
}

export function responsesToolProblem(b) {
    const { names, problem } = openaiTools(b.tools, false);
    return problem ?? openaiChoice(b, names, false) ?? responsesInput(b.input);
}

// ---- OpenAI chat completions ----

/* An assistant message's tool_calls: [{id, type: function, function: {name, arguments}}]. */
function chatCalls(m, p) {
    if (!Array.isArray(m.tool_calls) || m.tool_calls.length === 0)
        return { problem: bad(`${p}.tool_calls`, `Invalid '${p}.tool_calls': expected a non-empty array.`) };
    const ids = [];
    for (const [j, c] of m.tool_calls.entries()) {
        const q = `${p}.tool_calls[${j}]`;
        const k = isObj(c) ? extra(c, ['id', 'type', 'function']) : 'itself';
        if (k) return { problem: bad(q, `Invalid '${q}': a tool call is {id, type: "function", function: {name, arguments}} (unexpected '${k}').`) };
        if (typeof c.id !== 'string' || c.id === '') return { problem: bad(`${q}.id`, `Missing required parameter: '${q}.id'.`) };
        if (c.type !== 'function') return { problem: bad(`${q}.type`, `Invalid value for '${q}.type': expected "function".`) };
        const k2 = isObj(c.function) ? extra(c.function, ['name', 'arguments']) : 'itself';
        if (k2) return { problem: bad(`${q}.function`, `Invalid '${q}.function': expected {name, arguments} (unexpected '${k2}').`) };
        if (typeof c.function.name !== 'string') return { problem: bad(`${q}.function.name`, `Missing required parameter: '${q}.function.name'.`) };
        if (typeof c.function.arguments !== 'string')
            return { problem: bad(`${q}.function.arguments`, `Invalid type for '${q}.function.arguments': expected a string, but got ${typeof c.function.arguments} instead.`) };
        ids.push(c.id);
    }
    return { ids };
}

/* Every call of an assistant message answered by the role tool messages right after it. */
function chatMessages(messages) {
    let pending = new Set();
    const unanswered = () =>
        bad('messages', `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...pending].join(', ')}`);
    for (const [i, m] of messages.entries()) {
        const p = `messages[${i}]`;
        if (!isObj(m)) return bad(p, `Invalid type for '${p}': expected an object.`);
        if (m.role === 'tool') {
            const k = extra(m, ['role', 'tool_call_id', 'content', 'name']);
            if (k) return bad(`${p}.${k}`, `Unknown parameter: '${p}.${k}'. A tool message is {role: "tool", tool_call_id, content}.`);
            if (typeof m.content !== 'string' && !Array.isArray(m.content))
                return bad(`${p}.content`, `Invalid type for '${p}.content': expected a string or an array.`);
            if (!pending.delete(m.tool_call_id))
                return bad(p, "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.");
            continue;
        }
        if (pending.size > 0) return unanswered();
        if (m.role === 'assistant' && m.tool_calls !== undefined) {
            const { ids, problem } = chatCalls(m, p);
            if (problem) return problem;
            if (m.content !== null && m.content !== undefined && typeof m.content !== 'string' && !Array.isArray(m.content))
                return bad(`${p}.content`, `Invalid type for '${p}.content': expected a string, an array or null.`);
            pending = new Set(ids);
        } else if (typeof m.content !== 'string' && !Array.isArray(m.content))
            return bad(`${p}.content`, `Invalid type for '${p}.content': expected a string or an array.`);
    }
    return pending.size > 0 ? unanswered() : null;
}

export function chatToolProblem(b) {
    const { names, problem } = openaiTools(b.tools, true);
    return problem ?? openaiChoice(b, names, true) ?? chatMessages(b.messages);
}

// ---- Anthropic Messages ----

function anthropicTools(tools) {
    const names = [];
    if (tools === undefined) return { names };
    if (!Array.isArray(tools)) return { problem: bad('tools', 'tools: Input should be a valid list') };
    for (const [i, t] of tools.entries()) {
        const p = `tools.${i}`;
        if (!isObj(t)) return { problem: bad(p, `${p}: Input should be a valid dictionary`) };
        const k = extra(t, ['name', 'description', 'input_schema', 'type', 'cache_control']);
        if (k) return { problem: bad(`${p}.${k}`, `${p}.${k}: Extra inputs are not permitted (tools are {name, description, input_schema})`) };
        if (t.type !== undefined && t.type !== 'custom') return { problem: bad(`${p}.type`, `${p}.type: Input should be 'custom'`) };
        if (typeof t.name !== 'string' || !NAME_RE.test(t.name))
            return { problem: bad(`${p}.name`, `${p}.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`) };
        if (t.description !== undefined && typeof t.description !== 'string')
            return { problem: bad(`${p}.description`, `${p}.description: Input should be a valid string`) };
        if (!isObj(t.input_schema)) return { problem: bad(`${p}.input_schema`, `${p}.input_schema: Field required`) };
        if (t.input_schema.type !== 'object') return { problem: bad(`${p}.input_schema.type`, `${p}.input_schema.type: Input should be 'object'`) };
        if (names.includes(t.name)) return { problem: bad('tools', 'tools: Tool names must be unique.') };
        names.push(t.name);
    }
    return { names };
}

/* {type: auto | any | tool (with name) | none, disable_parallel_tool_use (not with none)}. */
function anthropicChoice(tc, names) {
    if (tc === undefined) return null;
    if (names.length === 0) return bad('tool_choice', 'tool_choice may only be specified while providing tools.');
    if (!isObj(tc) || !['auto', 'any', 'tool', 'none'].includes(tc.type))
        return bad('tool_choice', "tool_choice: Input should be an object with type 'auto', 'any', 'tool' or 'none'");
    const allowed = tc.type === 'none' ? ['type'] : tc.type === 'tool' ? ['type', 'name', 'disable_parallel_tool_use'] : ['type', 'disable_parallel_tool_use'];
    const k = extra(tc, allowed);
    if (k) return bad(`tool_choice.${k}`, `tool_choice.${tc.type}.${k}: Extra inputs are not permitted`);
    if (tc.disable_parallel_tool_use !== undefined && typeof tc.disable_parallel_tool_use !== 'boolean')
        return bad('tool_choice.disable_parallel_tool_use', 'tool_choice.disable_parallel_tool_use: Input should be a valid boolean');
    if (tc.type === 'tool' && (typeof tc.name !== 'string' || !names.includes(tc.name)))
        return bad('tool_choice.name', `tool_choice.name: '${tc.name}' is not one of the tools`);
    return null;
}

/* One content block of message i (role), against the calls waiting for results. */
function anthropicBlock(x, p, role, waiting) {
    if (!isObj(x) || typeof x.type !== 'string') return bad(p, `${p}: Input should be a content block`);
    if (x.type === 'text') {
        const k = extra(x, ['type', 'text', 'cache_control', 'citations']);
        if (k) return bad(`${p}.${k}`, `${p}.text.${k}: Extra inputs are not permitted`);
        if (typeof x.text !== 'string' || x.text === '') return bad(`${p}.text`, `${p}: text content blocks must be non-empty`);
    } else if (x.type === 'tool_use') {
        const k = extra(x, ['type', 'id', 'name', 'input', 'cache_control']);
        if (k) return bad(`${p}.${k}`, `${p}.tool_use.${k}: Extra inputs are not permitted (a tool_use block is {type, id, name, input})`);
        if (role !== 'assistant') return bad(p, `${p}: tool_use blocks are only allowed in assistant messages`);
        if (typeof x.id !== 'string' || !ANTHROPIC_ID_RE.test(x.id)) return bad(`${p}.id`, `${p}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'`);
        if (typeof x.name !== 'string' || x.name === '') return bad(`${p}.name`, `${p}.tool_use.name: Field required`);
        if (!isObj(x.input)) return bad(`${p}.input`, `${p}.tool_use.input: Input should be a valid dictionary`);
    } else if (x.type === 'tool_result') {
        const k = extra(x, ['type', 'tool_use_id', 'content', 'is_error', 'cache_control']);
        if (k) return bad(`${p}.${k}`, `${p}.tool_result.${k}: Extra inputs are not permitted (a tool_result block is {type, tool_use_id, content, is_error})`);
        if (role !== 'user') return bad(p, `${p}: tool_result blocks are only allowed in user messages`);
        if (x.is_error !== undefined && typeof x.is_error !== 'boolean') return bad(`${p}.is_error`, `${p}.tool_result.is_error: Input should be a valid boolean`);
        const textBlocks = Array.isArray(x.content) && x.content.every((c) => isObj(c) && c.type === 'text' && typeof c.text === 'string');
        if (x.content !== undefined && typeof x.content !== 'string' && !textBlocks)
            return bad(`${p}.content`, `${p}.tool_result.content: Input should be a valid string or a list of content blocks`);
        if (!waiting.delete(x.tool_use_id))
            return bad(p, `${p}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${x.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
    }
    return null;
}

function anthropicMessages(messages, names) {
    let waiting = new Set();
    let toolBlocks = false;
    const unanswered = (i) =>
        bad(`messages.${i}`, `messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${[...waiting].join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`);
    for (const [i, m] of messages.entries()) {
        const p = `messages.${i}`;
        if (!isObj(m) || !['user', 'assistant'].includes(m.role)) return bad(`${p}.role`, `${p}.role: Input should be 'user' or 'assistant'`);
        if (typeof m.content !== 'string' && !Array.isArray(m.content)) return bad(`${p}.content`, `${p}.content: Input should be a valid string or list`);
        const blocks = Array.isArray(m.content) ? m.content : [];
        if (waiting.size > 0) {
            if (m.role !== 'user') return unanswered(i - 1);
            const lead = blocks.findIndex((x) => x?.type !== 'tool_result');
            const leading = lead < 0 ? blocks.length : lead;
            if (blocks.slice(leading).some((x) => x?.type === 'tool_result') || leading < waiting.size)
                return bad(p, `${p}: Did not find ${waiting.size} tool_result block(s) at the beginning of this message. Messages following tool_use blocks must begin with a matching number of tool_result blocks.`);
        }
        const calls = [];
        for (const [j, x] of blocks.entries()) {
            const problem = anthropicBlock(x, `${p}.content.${j}`, m.role, waiting);
            if (problem) return problem;
            if (x.type === 'tool_use') calls.push(x.id);
            toolBlocks ||= x.type === 'tool_use' || x.type === 'tool_result';
        }
        if (waiting.size > 0) return unanswered(i - 1);
        waiting = new Set(calls);
    }
    if (waiting.size > 0) return unanswered(messages.length - 1);
    if (toolBlocks && names.length === 0) return bad('tools', 'Requests which include `tool_use` or `tool_result` blocks must define tools.');
    return null;
}

export function messagesToolProblem(b) {
    const foreign = ['parallel_tool_calls', 'functions', 'function_call'].find((k) => k in b);
    if (foreign) return bad(foreign, `${foreign}: Extra inputs are not permitted (the Messages API puts disable_parallel_tool_use in tool_choice)`);
    const { names, problem } = anthropicTools(b.tools);
    return problem ?? anthropicChoice(b.tool_choice, names) ?? anthropicMessages(b.messages, names);
}
