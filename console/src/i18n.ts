// English and Chinese: chosen from the browser's language, switchable (kept in localStorage).

const en = {
  title: "AutoGPT console",
  skip: "Skip to content",
  navTasks: "Tasks",
  navAgent: "Agent",
  language: "Language",
  newTask: "New task",
  task: "Task",
  taskHint: "What the agent should do.",
  files: "Files",
  autoRun: "Run at once (auto_run)",
  maxSteps: "Max steps",
  model: "Model",
  modelDefault: "the server's default",
  additionalInput: "Additional input (JSON object)",
  jsonInvalid: "Not a JSON object: {0}",
  jsonNotObject: "must be an object, e.g. {\"images\": []}",
  createTask: "Create task",
  creating: "Creating…",
  uploading: "Uploading {0}…",
  tasks: "Tasks",
  statusFilter: "Status",
  all: "all",
  refresh: "Refresh",
  previous: "Previous",
  next: "Next",
  pageOf: "Page {0} of {1} · {2} in all",
  noTasks: "No tasks yet.",
  created: "created",
  running: "running",
  completed: "completed",
  failed: "failed",
  createdAt: "Created {0}",
  filesCount: "{0} files",
  back: "All tasks",
  notFound: "Task not found: {0}",
  progress: "Progress",
  run: "Run",
  cancel: "Cancel",
  runStarted: "Run started.",
  cancelled: "Cancel requested.",
  stepInput: "Step input",
  runStep: "Run one step",
  steps: "Steps",
  noSteps: "No steps yet.",
  stepN: "Step {0}",
  arguments: "Arguments",
  result: "Result",
  tokens: "{0} tokens",
  cost: "${0}",
  toolCalls: "Tool call",
  taskFiles: "Files",
  noFiles: "No files yet.",
  upload: "Upload",
  uploadFiles: "Upload files",
  delete: "Delete",
  deleteFile: "Delete {0}",
  agentMade: "written by the agent",
  logs: "Live log",
  noLogs: "No log lines yet.",
  live: "live",
  reconnecting: "reconnecting…",
  agent: "Agent",
  version: "Version",
  capabilities: "Capabilities",
  activeTasks: "Active tasks",
  totalTasks: "Total tasks",
  spend: "Spend",
  budget: "of {0} budget",
  noBudget: "no budget set",
  tokensUsed: "Tokens used",
  limits: "Limits",
  uptime: "Up since",
  level: "Level",
  restart: "Restart",
  restartConfirm: "Restart the agent? Running tasks are interrupted.",
  restarted: "Restarting: {0}",
  operatorOnly: "Only the operator may do this (403).",
  keyTitle: "This API needs a key",
  keyExplain: "This API asks for a key. It is kept for this browser session only.",
  keyField: "API key",
  keyUse: "Use key",
  keyRefused: "The key was refused (401 UNAUTHORIZED). Check it and try again.",
  keyForget: "Forget key",
  error: "Error: {0}",
  loading: "Loading…",
} as const;

export type Key = keyof typeof en;

const zh: Record<Key, string> = {
  title: "AutoGPT 控制台",
  skip: "跳到正文",
  navTasks: "任务列表",
  navAgent: "代理",
  language: "语言",
  newTask: "新建任务",
  task: "任务",
  taskHint: "代理要做的事。",
  files: "文件",
  autoRun: "立即运行（auto_run）",
  maxSteps: "最多步数",
  model: "模型",
  modelDefault: "服务器默认",
  additionalInput: "附加输入（JSON 对象）",
  jsonInvalid: "不是 JSON 对象：{0}",
  jsonNotObject: "必须是对象，例如 {\"images\": []}",
  createTask: "创建任务",
  creating: "正在创建…",
  uploading: "正在上传 {0}…",
  tasks: "任务",
  statusFilter: "状态",
  all: "全部",
  refresh: "刷新",
  previous: "上一页",
  next: "下一页",
  pageOf: "第 {0} / {1} 页 · 共 {2} 个任务",
  noTasks: "还没有任务。",
  created: "已创建",
  running: "运行中",
  completed: "已完成",
  failed: "失败",
  createdAt: "创建于 {0}",
  filesCount: "{0} 个文件",
  back: "全部任务",
  notFound: "任务不存在：{0}",
  progress: "进度",
  run: "运行",
  cancel: "取消",
  runStarted: "已开始运行。",
  cancelled: "已请求取消。",
  stepInput: "步骤输入",
  runStep: "执行一步",
  steps: "步骤",
  noSteps: "还没有步骤。",
  stepN: "第 {0} 步",
  arguments: "参数",
  result: "结果",
  tokens: "{0} 个 token",
  cost: "${0}",
  toolCalls: "工具调用",
  taskFiles: "文件",
  noFiles: "还没有文件。",
  upload: "上传",
  uploadFiles: "上传文件",
  delete: "删除",
  deleteFile: "删除 {0}",
  agentMade: "由代理写入",
  logs: "实时日志",
  noLogs: "还没有日志。",
  live: "实时",
  reconnecting: "正在重新连接…",
  agent: "代理",
  version: "版本",
  capabilities: "能力",
  activeTasks: "运行中的任务",
  totalTasks: "任务总数",
  spend: "花费",
  budget: "预算 {0}",
  noBudget: "未设预算",
  tokensUsed: "已用 token",
  limits: "限制",
  uptime: "启动于",
  level: "级别",
  restart: "重启",
  restartConfirm: "重启代理？运行中的任务会被中断。",
  restarted: "正在重启：{0}",
  operatorOnly: "只有运营者可以这样做（403）。",
  keyTitle: "此 API 需要密钥",
  keyExplain: "此 API 需要密钥。密钥只保存在本次浏览器会话中。",
  keyField: "API 密钥",
  keyUse: "使用密钥",
  keyRefused: "密钥被拒绝（401 UNAUTHORIZED）。请检查后重试。",
  keyForget: "忘记密钥",
  error: "错误：{0}",
  loading: "加载中…",
};

export type Lang = "en" | "zh";
const LANG_KEY = "autogpt.console.lang";

function initial(): Lang {
  const kept = localStorage.getItem(LANG_KEY);
  if (kept === "en" || kept === "zh") return kept;
  return (navigator.languages?.[0] ?? navigator.language ?? "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

export let lang: Lang = initial();

export function setLang(next: Lang): void {
  lang = next;
  localStorage.setItem(LANG_KEY, next);
  document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
}

export function t(key: Key, ...args: (string | number)[]): string {
  const text = (lang === "zh" ? zh : en)[key];
  return text.replace(/\{(\d)\}/g, (_, i: string) => String(args[Number(i)] ?? ""));
}

/** A status word in the current language (`completed`, `已完成`). */
export function statusWord(status: string): string {
  return status in en ? t(status as Key) : status;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB");
}
